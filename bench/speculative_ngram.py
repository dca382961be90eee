"""Speculative decoding without a draft model: llama-server's n-gram drafts, against plain decoding.

The embedded llama-server can draft tokens from n-grams of the prompt and of what it has written
(`--spec-type ngram-simple|ngram-map-k|ngram-mod|ngram-cache`) and verify them in one batch. Only one
model ships with sme-mcp, so n-gram drafts are the only speculation it could use. Answers copy spans from
their prompt (a repair repeats the failing code, a general answer quotes its passage), which is where
n-gram drafts are accepted. Each setting gets a fresh llama-server (the supervised one, in the layout setup
chose) and the same four prompts once, greedy, without the prompt cache: a code answer in the code expert's
field format, a function with its asserts, a passage-reading answer over the demo corpus's Super Bowl 50
article, and a repair of failing code. For each: decode speed, draft tokens proposed and accepted, and
whether the text is the one plain decoding wrote (greedy speculation should not change it).

    .venv/bin/python bench/speculative_ngram.py   # writes bench/results/speculative_ngram.json
"""

from __future__ import annotations

import argparse
from typing import Any

import httpx
from common import REPO, conditions, finish, print_table, scratch_dir, summary, write_result

from sme_mcp.config.settings import LocalServerSettings, Settings
from sme_mcp.server.local_lm import LocalServer

SETTINGS: dict[str, list[str]] = {
    "none": [],
    "ngram-simple": ["--spec-type", "ngram-simple"],
    "ngram-simple n3 m8": ["--spec-type", "ngram-simple", "--spec-ngram-simple-size-n", "3",
                           "--spec-ngram-simple-size-m", "8"],
    "ngram-map-k": ["--spec-type", "ngram-map-k"],
    "ngram-mod": ["--spec-type", "ngram-mod"],
    "ngram-cache": ["--spec-type", "ngram-cache"],
}
CODE_SYSTEM = (
    "Your input fields are:\n1. `question` (str)\nYour output fields are:\n1. `reasoning` (str)\n2. `code` (str)\n"
    "All interactions will be structured in the following way, with the appropriate values filled in.\n\n"
    "[[ ## question ## ]]\n{question}\n\n[[ ## reasoning ## ]]\n{reasoning}\n\n[[ ## code ## ]]\n{code}\n\n"
    "[[ ## completed ## ]]\nIn adhering to this structure, your objective is: \n"
    "        Write a Python function that answers the question."
)
FAILING = """def remove_replica(tup):
    count = {}
    for element in tup:
        if element in count:
            count[element] += 1
        else:
            count[element] = 1
    result = []
    for element in tup:
        if count[element] > 1:
            result.append('MSP')
        else:
            result.append(element)
    return tuple(result)"""


def prompts() -> dict[str, list[dict[str, str]]]:
    article = (REPO / "docs" / "demo_corpus" / "articles" / "Super_Bowl_50.md").read_text()
    passages = [p for p in article.split("\n\n") if len(p) > 200][:3]
    context = "\n".join(f"[{i + 1}] «Super Bowl 50: {p[:780]}»" for i, p in enumerate(passages))
    return {
        "code": [{"role": "system", "content": CODE_SYSTEM}, {"role": "user", "content": (
            "[[ ## question ## ]]\nCan you write a python function to check if a number is prime?\n\nRespond with "
            "the corresponding output fields, starting with the field `[[ ## reasoning ## ]]`, then "
            "`[[ ## code ## ]]`, and then ending with the marker for `[[ ## completed ## ]]`.")}],
        "function and asserts": [{"role": "system", "content": "You write Python."}, {"role": "user", "content": (
            "Write a function that counts how many times each character appears in a string, returning a dict. "
            "Then write three assert lines that test it.")}],
        "passages": [{"role": "system", "content": "Answer the question from the context. Give your reasoning, "
                      "then the answer."},
                     {"role": "user", "content": f"Context:\n{context}\n\nQuestion: Which team won Super Bowl 50?"}],
        "repair": [{"role": "system", "content": "You fix Python code."}, {"role": "user", "content": (
            "This code fails `assert remove_replica((1, 1, 4, 4, 4, 5, 5, 6, 7, 7)) == (1, 'MSP', 4, 'MSP', 'MSP', "
            f"5, 'MSP', 6, 7, 'MSP')`. Return the whole fixed function.\n\n```python\n{FAILING}\n```")}],
    }


def measure(name: str, extra: list[str], max_tokens: int) -> list[dict[str, Any]]:
    settings = Settings()
    local_settings = LocalServerSettings(**{**settings.local.model_dump(), "threads": settings.local.threads_batch,
                                            "parallel": 1, "extra_args": extra})
    rows = []
    with scratch_dir("spec") as data:
        local = LocalServer(local_settings, settings.cache_dir, data / "logs")
        local.start()
        try:
            base = local.base_url(wait=local_settings.startup_timeout)
            with httpx.Client(timeout=600) as http:
                for label, messages in prompts().items():
                    resp = http.post(f"{base}/chat/completions", json={
                        "model": "local", "temperature": 0.0, "max_tokens": max_tokens, "cache_prompt": False,
                        "messages": messages})
                    resp.raise_for_status()
                    body = resp.json()
                    t = body["timings"]
                    rows.append({"setting": name, "prompt": label, "text": body["choices"][0]["message"]["content"],
                                 "predicted_n": t.get("predicted_n"),
                                 "decode_tokens_per_s": round(t["predicted_per_second"], 2),
                                 "draft_n": t.get("draft_n") or 0, "draft_accepted": t.get("draft_n_accepted") or 0,
                                 "decode_s": round(t["predicted_ms"] / 1000, 2)})
        finally:
            local.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=300)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    cond = conditions(args.note)
    rows = [row for name, extra in SETTINGS.items() for row in measure(name, extra, args.max_tokens)]
    plain = {r["prompt"]: r for r in rows if r["setting"] == "none"}
    for r in rows:
        base = plain[r["prompt"]]
        r["same_text"] = r["text"] == base["text"]
        # Decode time per token written, against plain decoding of the same prompt (<1: faster).
        r["per_token_vs_none"] = round((r["decode_s"] / r["predicted_n"]) / (base["decode_s"] / base["predicted_n"]), 3)
    settings = [{"setting": name, "flags": " ".join(extra),
                 "decode_tokens_per_s": summary([r["decode_tokens_per_s"] for r in rows if r["setting"] == name]),
                 "per_token_vs_none": summary([r["per_token_vs_none"] for r in rows if r["setting"] == name], 3),
                 "same_text": sum(r["same_text"] for r in rows if r["setting"] == name),
                 "draft_n": sum(r["draft_n"] for r in rows if r["setting"] == name),
                 "draft_accepted": sum(r["draft_accepted"] for r in rows if r["setting"] == name)}
                for name, extra in SETTINGS.items()]
    print_table(["setting", "decode tok/s p50", "time per token vs none (p50)", "same text", "drafts accepted"],
                [[s["setting"], s["decode_tokens_per_s"]["p50"], s["per_token_vs_none"]["p50"],
                  f"{s['same_text']}/{len(plain)}", f"{s['draft_accepted']}/{s['draft_n']}"] for s in settings])
    write_result("speculative_ngram", {"conditions": finish(cond), "max_tokens": args.max_tokens,
                                       "settings": settings, "rows": rows})


if __name__ == "__main__":
    main()
