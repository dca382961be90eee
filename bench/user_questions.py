"""Questions as people ask them, over streamable HTTP against `sme-mcp serve`: latency, cost, routing, correctness.

The questions (bench/data/user_questions.jsonl) are written as a user types them, not taken from
the gold sets: math, code and general, some answerable from the demo corpus and some not. Each
is asked with `ask_expert` and no domain, as a client would, with DSPy's response cache off (so
no answer comes from an earlier run). For each answer: wall latency seen by the client, time to
the first progress notification and the longest gap between two, the route and how it was
chosen, LM calls and tokens (evaluated, cached, generated), and whether the answer is right.
Beside it, the floor: the same question sent once, straight to the supervised llama-server.

    .venv/bin/python bench/user_questions.py [--with-domain] [--no-floor]   # writes bench/results/user_questions.json
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
from common import REPO, conditions, finish, http_server, print_table, summary, write_result
from mcp import Client

QUESTIONS = REPO / "bench" / "data" / "user_questions.jsonl"


def _code_of(answer: dict[str, Any]) -> str:
    if answer.get("code"):
        return str(answer["code"])
    fenced = re.findall(r"```(?:python|py)?\s*\n(.*?)```", answer.get("answer") or "", re.DOTALL)
    return "\n\n".join(fenced)


def _functions(code: str) -> list[str]:
    """Top-level function names of `code` (parsed, never run here)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name != "main"]


def check(question: dict[str, Any], answer: dict[str, Any] | None) -> tuple[bool, str]:
    """Whether the answer is right, and why not."""
    from sme_mcp.optimize.metrics import math_equivalent, normalize_answer
    from sme_mcp.tools.test_harness import run_tests

    if answer is None:
        return False, "no answer"
    spec = question["check"]
    text = answer.get("answer") or ""
    if spec["kind"] == "math":
        return math_equivalent(text, spec["answer"]), f"expected {spec['answer']}"
    if spec["kind"] == "contains":
        norm = normalize_answer(text)
        return any(normalize_answer(a) in norm for a in spec["any"]), f"expected one of {spec['any']}"
    if spec["kind"] == "contains_word":
        return any(re.search(rf"\b{re.escape(a)}\b", text) for a in spec["any"]), f"expected {spec['any']}"
    code = _code_of(answer)
    names = _functions(code)
    if not names:
        return False, "no function in the answer"
    for name in reversed(names):  # the last function defined is usually the one asked for
        tests = [f"assert {name}(*{args!r}) in {expected!r}" for args, expected in spec["calls"]]
        if run_tests(code, tests, timeout_s=10).passed:
            return True, f"{name} passed {len(tests)} calls"
    return False, f"no function among {names} passed {spec['calls']}"


async def ask_all(url: str, questions: list[dict[str, Any]], with_domain: bool) -> list[dict[str, Any]]:
    rows = []
    async with Client(url) as client:
        for _ in range(300):  # wait for the local model, so the first question does not pay for loading it
            listed = await client.call_tool("list_experts", {})
            local_lm = (listed.structured_content or {}).get("local_lm") or {}
            # The adaptive pair serves once one server is up; wait for both, so no answer pays for loading.
            servers = (local_lm.get("servers") or {}).values()
            if local_lm.get("state") == "ready" and all(s.get("state") == "ready" for s in servers):
                break
            await anyio.sleep(1)
        else:
            raise RuntimeError("the local model was not ready after 300 s; see the server log")
        for q in questions:
            args = {"question": q["question"], **({"domain": q["domain"]} if with_domain else {})}
            started = time.perf_counter()
            marks: list[float] = []

            async def progress(done: float, total: float | None, message: str | None,
                               marks: list[float] = marks, started: float = started) -> None:
                marks.append(time.perf_counter() - started)

            try:
                result = await client.call_tool("ask_expert", args, progress_callback=progress)
                error = result.content[0].text if result.is_error else None
                answer = None if result.is_error else result.structured_content
            except Exception as exc:  # a transport failure is a result too
                answer, error = None, f"{type(exc).__name__}: {exc}"
            latency = time.perf_counter() - started
            gaps = [b - a for a, b in zip([0.0, *marks], [*marks, latency], strict=True)]
            ok, why = check(q, answer)
            cost = (answer or {}).get("cost") or {}
            verification = (answer or {}).get("verification") or {}
            rows.append({
                "id": q["id"], "question": q["question"], "expected_domain": q["domain"],
                "domain": (answer or {}).get("domain"), "routed_by": (answer or {}).get("routed_by"),
                "deployment": (answer or {}).get("deployment"),
                "correct": ok, "why": None if ok else why, "error": error, "latency_s": round(latency, 2),
                "first_progress_s": round(marks[0], 2) if marks else None, "progress_notifications": len(marks),
                "max_progress_gap_s": round(max(gaps), 2), "lm_calls": cost.get("lm_calls"),
                "prompt_tokens_evaluated": cost.get("prompt_tokens_evaluated"),
                "prompt_tokens_cached": cost.get("prompt_tokens_cached"),
                "completion_tokens": cost.get("completion_tokens"), "stages": cost.get("stages"),
                "verification": {k: verification.get(k) for k in ("method", "outcome", "seconds")} if verification
                else None,
                "answer": ((answer or {}).get("answer") or "")[:300],
            })
            r = rows[-1]
            print(f"{r['id']} {r['latency_s']:6.1f}s {str(r['domain']):8} {str(r['routed_by']):18} "
                  f"{'ok ' if ok else 'BAD'} {q['question'][:60]}", flush=True)
        listed = (await client.call_tool("list_experts", {})).structured_content or {}
        port = (listed.get("local_lm") or {}).get("port")
    return rows, port


def floor(port: int, questions: list[dict[str, Any]], max_tokens: int = 256) -> list[dict[str, Any]]:
    """One direct chat request per question to the same llama-server: the least an answer can cost."""
    out = []
    with httpx.Client(timeout=300) as http:
        for q in questions:
            t = time.perf_counter()
            resp = http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={
                "model": "local", "temperature": 0.0, "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": q["question"]}]})
            resp.raise_for_status()
            timings = resp.json().get("timings", {})
            out.append({"id": q["id"], "latency_s": round(time.perf_counter() - t, 2),
                        "prompt_n": timings.get("prompt_n"), "predicted_n": timings.get("predicted_n")})
    return out


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_domain: dict[str, Any] = {}
    for domain in sorted({r["expected_domain"] for r in rows}):
        part = [r for r in rows if r["expected_domain"] == domain]
        by_domain[domain] = {"n": len(part), "correct": sum(r["correct"] for r in part),
                             "latency_s": summary([r["latency_s"] for r in part])}
    return {
        "n": len(rows), "correct": sum(r["correct"] for r in rows),
        "route_correct": sum(r["domain"] == r["expected_domain"] for r in rows),
        "errors": sum(r["error"] is not None for r in rows),
        "latency_s": summary([r["latency_s"] for r in rows]),
        "over_60_s": sum(r["latency_s"] > 60 for r in rows),
        "first_progress_s": summary([r["first_progress_s"] for r in rows if r["first_progress_s"] is not None]),
        "max_progress_gap_s": max(r["max_progress_gap_s"] for r in rows),
        "lm_calls": summary([r["lm_calls"] or 0 for r in rows]),
        "prompt_tokens_evaluated": summary([r["prompt_tokens_evaluated"] or 0 for r in rows]),
        "prompt_tokens_cached": summary([r["prompt_tokens_cached"] or 0 for r in rows]),
        "completion_tokens": summary([r["completion_tokens"] or 0 for r in rows]),
        "routed_by": {k: sum(r["routed_by"] == k for r in rows) for k in sorted({str(r["routed_by"]) for r in rows})},
        "by_domain": by_domain,
        "verification": verification_tally(rows),
    }


def latency_ratio(routed: list[dict[str, Any]], given: list[dict[str, Any]]) -> dict[str, Any]:
    """How much longer the routed answer took than the same question asked with its domain given.

    Example:
        >>> r = [{"id": "a", "latency_s": 3.0}, {"id": "b", "latency_s": 10.0}]
        >>> g = [{"id": "a", "latency_s": 2.0}, {"id": "b", "latency_s": 10.0}]
        >>> latency_ratio(r, g)["p50_of_p50"], latency_ratio(r, g)["per_question"]["p50"]
        (1.083, 1.25)
    """
    given_by_id = {g["id"]: g["latency_s"] for g in given}
    pairs = [(r["latency_s"], given_by_id[r["id"]]) for r in routed if r["id"] in given_by_id]
    routed_p50 = summary([a for a, _ in pairs])["p50"]
    given_p50 = summary([b for _, b in pairs])["p50"]
    return {"n": len(pairs), "p50_of_p50": round(routed_p50 / given_p50, 3) if given_p50 else None,
            "per_question": summary([round(a / b, 3) for a, b in pairs if b > 0])}


def verification_tally(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per verification outcome the user saw: answers, how many were right, and the seconds the check took.

    Example:
        >>> rows = [{"correct": True, "verification": {"method": "tests", "outcome": "passed", "seconds": 2.0}},
        ...         {"correct": False, "verification": None}]
        >>> verification_tally(rows)["passed"]["correct"], verification_tally(rows)["none"]["n"]
        (1, 1)
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r.get("verification") or {}).get("outcome") or "none", []).append(r)
    return {outcome: {"n": len(part), "correct": sum(r["correct"] for r in part),
                      "seconds": summary([v["seconds"] for r in part
                                          if (v := r.get("verification") or {}).get("seconds") is not None])}
            for outcome, part in sorted(groups.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--with-domain", action="store_true", help="also ask each question with its domain given")
    parser.add_argument("--no-floor", action="store_true", help="skip the direct llama-server calls")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--note", default="")
    parser.add_argument("--name", default="user_questions", help="result file name under bench/results")
    args = parser.parse_args()
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    questions = questions[: args.limit] if args.limit else questions
    cond = conditions(args.note)
    log = Path(tempfile.mkdtemp(prefix="sme-bench-uq-")) / "server.log"
    env = {**__import__("os").environ, "SME_LM_CACHE": "false"}
    body: dict[str, Any] = {}
    with http_server(env=env, log=log) as url:
        rows, port = anyio.run(ask_all, url, questions, False)
        body["routed"] = {"summary": aggregate(rows), "items": rows}
        if not args.no_floor and port:
            items = floor(port, questions)
            body["floor"] = {"latency_s": summary([i["latency_s"] for i in items]), "items": items}
    if args.with_domain:
        # A server of its own, started cold like the first: on the same server the prompt cache would
        # still hold whole prompts of the routed pass and make the domain-given answers look cheaper.
        with http_server(env=env, log=log) as url:
            rows_d, _ = anyio.run(ask_all, url, questions, True)
        body["with_domain"] = {"summary": aggregate(rows_d), "items": rows_d, "server": "fresh"}
        body["routed_over_domain"] = latency_ratio(rows, rows_d)
    body["conditions"] = finish(cond)
    body["settings"] = {"lm_cache": False, "server_log": str(log)}
    write_result(args.name, body)
    s = body["routed"]["summary"]
    print_table(["answers", "correct", "routed right", "p50 s", "p95 s", "max s", "> 60 s", "first progress p50 s",
                 "max gap s", "LM calls p50"],
                [[s["n"], s["correct"], s["route_correct"], s["latency_s"]["p50"], s["latency_s"]["p95"],
                  s["latency_s"]["max"], s["over_60_s"], s["first_progress_s"]["p50"], s["max_progress_gap_s"],
                  s["lm_calls"]["p50"]]])
    if "routed_over_domain" in body:
        ratio = body["routed_over_domain"]
        print(f"routed / domain given (fresh server each): p50 ratio {ratio['p50_of_p50']}, "
              f"per question p50 {ratio['per_question']['p50']}")
    if "floor" in body:
        print(f"floor (one direct llama-server call per question): p50 {body['floor']['latency_s']['p50']} s, "
              f"p95 {body['floor']['latency_s']['p95']} s")


if __name__ == "__main__":
    sys.exit(main())
