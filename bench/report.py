"""Regenerates the benchmark section of README.md from bench/results/*.json (never edit it by hand).

Writes everything between `<!-- bench:begin -->` and `<!-- bench:end -->`: one table per benchmark,
the conditions it ran under, the charts, and the reference figures with their sources.

Usage:
    .venv/bin/python bench/report.py          # rewrite the README section
    .venv/bin/python bench/report.py --check  # exit 1 if the README is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from common import REPO, RESULTS

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join("–" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def conditions(data: dict[str, Any]) -> str:
    c = data["conditions"]
    before = "/".join(f"{x:.2f}" for x in c["loadavg_before"])
    after = "/".join(f"{x:.2f}" for x in c["loadavg_after"])
    return (f"<sub>{c['started_at']}, commit {c['git_commit']}, {c['cpu_count']} CPUs, load average {before} before "
            f"and {after} after, {c['llama_servers_before']} llama-server processes already running; "
            f"{c['note']}.</sub>")


def image(name: str, alt: str) -> str:
    return f"![{alt}](bench/results/{name}.png)" if (RESULTS / f"{name}.png").exists() else ""


def startup(data: dict[str, Any]) -> str:
    floor = data["servers"]["minimal"]["ms"]["p50"]
    rows = [[f"`{s['command']}`", s["tools"], s["ms"]["p50"], f"{s['ms']['min']}–{s['ms']['max']}",
             f"{s['ms']['p50'] / floor:.2f}×", ", ".join(s["lm_state_at_list"]) or "–"]
            for s in data["servers"].values()]
    return _join([
        "**Startup** (`bench/startup.py`): launch to `tools/list` answered over stdio. `minimal` is an "
        "`MCPServer` with one tool (`bench/minimal_server.py`), the floor for any Python MCP server.",
        table(["server", "tools", "median ms", "min–max ms", "vs minimal", "local LM at tools/list"], rows),
        conditions(data), image("startup", "startup times"),
    ])


def sympy(data: dict[str, Any]) -> str:
    paths = list(data["paths"])
    rows = []
    for op, over in data["overhead"].items():
        cells = [f"{data['paths'][p][op]['p50']} / {data['paths'][p][op]['p95']}" for p in paths]
        rows.append([op, *cells, f"{over['stdio']['ratio_p50']}× (+{over['stdio']['added_ms_p50']} ms)",
                     f"{over['http']['ratio_p50']}× (+{over['http']['added_ms_p50']} ms)"])
    return _join([
        "**SymPy tools** (`bench/sympy_latency.py`): per-call latency, p50 / p95 in ms. `raw` calls the "
        "`sympy_ops` function in-process (pure compute), `pool` goes through `SympyWorkerPool.run` (a worker "
        "process with time and memory limits), `stdio` and `http` call the MCP tool. Overhead is p50 against `pool`.",
        table(["operation", *[f"{p} ms" for p in paths], "stdio vs pool", "http vs pool"], rows),
        conditions(data), image("sympy_latency", "SymPy tool latency per path"),
    ])


def fast_path(data: dict[str, Any]) -> str:
    rows = [[p, s["n"], s["p50"], s["p95"], s["max"]] for p, s in data["paths"].items()]
    wrong = len(data["wrong_or_not_fast_path"])
    return _join([
        f"**Arithmetic fast path** (`bench/fast_path.py`): `ask_expert` on questions like “{data['example']}”, "
        f"answered exactly by SymPy without the model ({wrong} answers wrong or not from the fast path).",
        table(["path", "calls", "p50 ms", "p95 ms", "max ms"], rows),
        conditions(data),
    ])


def lm_overhead(data: dict[str, Any]) -> str:
    names = {"direct": "llama-server `/v1/chat/completions`", "explicit_domain": "`ask_expert`, domain given",
             "routed": "`ask_expert`, routed"}
    rows = [[names.get(n, n), p["wall_s"]["p50"], p["wall_s"]["p95"], p["lm_calls_per_answer"],
             p["prompt_tokens_per_answer"], p["prompt_tokens_evaluated_per_answer"], p["completion_tokens_per_answer"],
             p["decode_tokens_per_s"], p["end_to_end_tokens_per_s"]] for n, p in data["paths"].items()]
    ratio = data["wall_ratio_vs_direct"]
    routed = [c["domain"] for c in data["calls"]["routed"]]
    chosen = ", ".join(f"{d} {routed.count(d)}" for d in sorted(set(routed)))
    return _join([
        "**LM overhead** (`bench/lm_overhead.py`): the same NQ-open question sent straight to the supervised "
        "llama-server, and through `ask_expert` (each question used once, fresh data dir: no cache hits). "
        f"Median wall-time ratio against the direct call on the same question: **{ratio['explicit_domain']['p50']}×** "
        f"with the domain given, **{ratio['routed']['p50']}×** routed. Token counts come from llama-server's own "
        "timings; “evaluated” is the prompt part it computed after reusing its cached prefix.",
        table(["path", "p50 s", "p95 s", "LM calls", "prompt tokens", "evaluated", "generated tokens",
               "decode tok/s", "end-to-end tok/s"], rows),
        f"Token and call columns are means per answer. The router sent the routed questions to: {chosen} "
        "(a question routed to math runs the ReAct expert, several LM calls).",
        conditions(data), image("lm_overhead", "LM overhead"),
    ])


def concurrency(data: dict[str, Any]) -> str:
    rows = [[np_, c["concurrency"], c["answers"], c["answers_per_min"], c["latency_s"]["p50"], c["latency_s"]["p95"],
             c["aggregate_decode_tokens_per_s"], s["n_ctx_slot"], len(c["errors"])]
            for np_, s in data["servers"].items() for c in s["cells"]]
    rec = data["recommendation"]
    gain = f"{rec['gain_over_parallel_1']}×" if rec.get("gain_over_parallel_1") else "–"
    threads = [[b["threads"], i + 1, b["decode_tokens_per_s"]["n"], b["decode_tokens_per_s"]["p50"],
                b["prompt_tokens_per_s"]["p50"]] for i, b in enumerate(data["threads"]["blocks"])]
    return _join([
        "**Concurrency** (`bench/concurrency.py`): parallel `ask_expert` calls (domain general, distinct short "
        "questions) against servers started with `SME_LOCAL__PARALLEL` (`-np`) 1, 2 and 4 at the default threads. "
        f"{data['calls_per_cell']} calls per cell, so p95 is close to the slowest call.",
        table(["-np", "concurrent calls", "answers", "answers/min", "p50 s", "p95 s", "generated tok/s (all slots)",
               "ctx per slot", "errors"], rows),
        f"Recommended `SME_LOCAL__PARALLEL` for this machine: **{rec['parallel']}** (best throughput at the highest "
        f"concurrency: `-np {rec['best_throughput_parallel']}`, {gain} the answers/min of `-np 1`; rule: "
        f"{rec['rule']}).",
        "llama-server threads (`SME_LOCAL__THREADS`), measured one after another as -t 1, -t 2, -t 1 so the "
        "repeat shows how much the load drifted:",
        table(["-t", "block", "requests", "decode tok/s (p50)", "prompt tok/s (p50)"], threads),
        conditions(data), image("concurrency", "throughput and latency against concurrency"),
    ])


def retrieval(data: dict[str, Any]) -> str:
    corpus, env, cfg = data["corpus"], data["environment"], data["settings"]
    quality = [[mode, q["recall@1"], q["recall@5"]] for mode, q in data["quality"].items()]
    scale = [[s["chunks"], s["documents"], s["build_s"], s["reingest_unchanged_s"],
              *(f"{s['latency'][m]['p50_ms']} / {s['latency'][m]['p95_ms']}" for m in ("vector", "fts", "hybrid"))]
             for s in data["scale"]]
    return _join([
        f"**Retrieval** (`bench/retrieval.py`): every one of the {corpus['questions']} SQuAD questions of the demo "
        f"corpus against an index of all its {corpus['paragraphs']} paragraphs (one file each); a question is found "
        "at k when a chunk of its own paragraph is in the top k. `hybrid` fuses vector and BM25 by reciprocal rank "
        "(the default), `hybrid_linear` by a weighted score.",
        table(["mode", "recall@1", "recall@5"], quality),
        "Index build (chunk, embed, write, full-text index) and query latency, p50 / p95 ms; the larger index is "
        "the corpus repeated in numbered copies:",
        table(["chunks", "files", "build s", "re-ingest unchanged s", "vector ms", "fts ms", "hybrid ms"], scale),
        f"<sub>{cfg['embedding_model']} on {cfg['onnx_threads']} onnxruntime thread(s), chunks of {cfg['chunk_size']} "
        f"characters with {cfg['chunk_overlap']} overlap; lancedb {env['lancedb']}, fastembed {env['fastembed']}; "
        f"{env['cpus']} CPUs, load average {env['load_average_1m_at_start']} at the start and "
        f"{env['load_average_1m_at_end']} at the end.</sub>",
    ])


def retrieval_gate(data: dict[str, Any]) -> str:
    rows = [[row["threshold"], f"{row['squad']:.1%}", f"{row['nq_open']:.1%}"] for row in data["kept"]]
    return _join([
        "**Relevance floor of the general expert** (`bench/retrieval_gate.py`): cosine similarity of the top "
        f"passage to the question, for {data['n']['squad']} SQuAD questions (answered by the demo corpus; median "
        f"{data['median_top_cosine']['squad']}) and {data['n']['nq_open']} NQ-open train/dev questions (mostly not; "
        f"median {data['median_top_cosine']['nq_open']}). Passages below `SME_RETRIEVAL_MIN_SIMILARITY` (default "
        "0.35) are not shown to the model.",
        table(["threshold", "SQuAD questions keeping their top passage", "NQ-open questions keeping theirs"], rows),
    ])


def scores() -> str:
    refs = json.loads((REPO / "bench" / "reference_scores.json").read_text(encoding="utf-8"))
    rows = [[f["model"], f["benchmark"], f["score"], f["setting"], f"[{f['source']}]({f['url']})"
             + (f" (read in [this copy]({f['verified_via'].split()[0]}))" if f.get("verified_via") else "")]
            for f in refs["figures"]]
    return _join([
        "**Quality beside published figures** (`bench/charts.py`): our holdout scores per gold set with their "
        "Wilson 95% intervals (baseline and optimized program where an optimize receipt exists; from `receipts/`), "
        "next to published figures for other models. *Indicative only*: " + refs["note"],
        image("scores", "gold-set scores beside published figures"),
        "<details><summary>Reference figures and sources</summary>\n\n"
        + table(["model", "benchmark", "score %", "setting", "source"], rows) + "\n\n</details>",
    ])


def user_questions(data: dict[str, Any]) -> str:
    def row(name: str, part: dict[str, Any]) -> list[Any]:
        s = part["summary"]
        return [name, s["n"], f"{s['correct']}/{s['n']}", f"{s['route_correct']}/{s['n']}", s["latency_s"]["p50"],
                s["latency_s"]["p95"], s["latency_s"]["max"], s["over_60_s"], s["first_progress_s"]["max"],
                s["max_progress_gap_s"], s["lm_calls"]["p50"], s["prompt_tokens_evaluated"]["p50"],
                s["prompt_tokens_cached"]["p50"], s["completion_tokens"]["p50"]]

    rows = [row("routed (no domain given)", data["routed"])]
    if "with_domain" in data:
        rows.append(row("domain given", data["with_domain"]))
    per_domain = [[d, f"{v['correct']}/{v['n']}", v["latency_s"]["p50"], v["latency_s"]["p95"], v["latency_s"]["max"]]
                  for d, v in data["routed"]["summary"]["by_domain"].items()]
    how = ", ".join(f"{k} {v}" for k, v in data["routed"]["summary"]["routed_by"].items())
    tally = data["routed"]["summary"].get("verification") or {}
    checked = [[outcome, v["n"], f"{v['correct']}/{v['n']}", v["seconds"]["p50"]] for outcome, v in tally.items()]
    floor = data.get("floor")
    floor_text = (f" The floor, the same questions sent once straight to the supervised llama-server (no "
                  f"program, no retrieval, up to 256 tokens): p50 {floor['latency_s']['p50']} s, p95 "
                  f"{floor['latency_s']['p95']} s." if floor else "")
    return _join([
        "**Questions as people ask them** (`bench/user_questions.py`, `bench/data/user_questions.jsonl`): "
        f"{data['routed']['summary']['n']} questions written as a user types them (math, code, general; some "
        "answered by the demo corpus, some not), asked with `ask_expert` over streamable HTTP against "
        "`sme-mcp serve` with no domain, DSPy's response cache off. Latency is what the client waited; "
        "tokens are per answer (medians)." + floor_text
        + _domain_pass_text(data),
        table(["run", "answers", "correct", "routed right", "p50 s", "p95 s", "max s", "> 60 s",
               "first progress (max) s", "longest progress gap s", "LM calls", "prompt tokens evaluated",
               "prompt tokens cached", "tokens generated"], rows),
        table(["domain", "correct", "p50 s", "p95 s", "max s"], per_domain),
        "What each answer said it had checked (`verification`), and how often it was right:" if checked else "",
        table(["verification", "answers", "correct", "check p50 s"], checked) if checked else "",
        f"<sub>Routed by: {how}.</sub>",
        conditions(data),
    ])


def _domain_pass_text(data: dict[str, Any]) -> str:
    if "with_domain" not in data:
        return ""
    if data["with_domain"].get("server") != "fresh":
        return (" The domain-given pass runs second, over the same questions and the same server, so that server's "
                "prompt cache can hold whole prompts from the first pass (compare the prompt tokens evaluated): it "
                "is faster than a first asking would be.")
    ratio = data["routed_over_domain"]
    return (" The domain-given pass asks the same questions of a second server started cold, as the first was, so "
            "neither pass finds the other's prompts in the cache. Routed against domain given: "
            f"**{ratio['p50_of_p50']}×** at the median, per question a median of {ratio['per_question']['p50']}× "
            f"(p95 {ratio['per_question']['p95']}×).")


def learning_from_use(data: dict[str, Any]) -> str:
    q, r, dev = data["questions"], data["ratings"], data["router_dev"]

    def row(name: str) -> list[Any]:
        b, a = data[name]["before"], data[name]["after"]
        return [name, b["n"], f"{b['decided_right']} → {a['decided_right']}",
                f"{b['decided_wrong']} → {a['decided_wrong']}", f"{b['goes_to_lm']} → {a['goes_to_lm']}",
                f"{b['lm_vote_label_right']} → {a['lm_vote_label_right']}"]

    pairs = data["misrouted_pairs"]
    pair_rows = [[p["pair"], f"“{p['rated_question']}”", p["rated_after"], f"“{p['unseen_question']}”",
                  f"{p['unseen_before']} → {p['unseen_after']}"] for p in pairs["pairs"]]
    regressions = data["unseen_regressions"]
    listed = "; ".join(f"“{g['question']}” ({g['before']} → {g['after']})" for g in regressions)

    def votes(v: dict[str, Any] | None) -> str:
        return f"{v['correct']}/{v['n']} right, {v['decided_wrong']} decided wrongly" if v else "–"

    return _join([
        "**Learning from use: rated misroutes** (`bench/learning_from_use.py`, `bench/data/routing_feedback.jsonl`): "
        f"{q['n']} questions typed as people type them ({', '.join(f'{n} {d}' for d, n in q['per_domain'].items())}; "
        f"{q['pairs']} pairs of paraphrases of the same need), split into a rated half ({q['rated']}: one phrasing "
        f"of every pair, every other unpaired question) and an unseen half ({q['unseen']}). Every rated question the "
        "router's nearest-neighbour vote decided wrongly was rated with `rate_answer(..., domain=<right domain>)`, "
        "which refits the vote at once, gated on the router dev split; then every question was routed again. No LM: "
        "a question whose vote is undecided goes to the LM stage, which is counted and never called (the last "
        "column is how many of those the vote's own label would have got right).",
        table(["half", "questions", "decided right", "decided wrong", "goes to the LM",
               "LM-bound, vote label right"], [row("rated"), row("unseen")]),
        f"{r['n']} misroutes rated: {r['refits']} refits, {r['promoted']} promoted, {r['rejected']} rejected; "
        f"{r['seconds']['median']} s per rating (median; max {r['seconds']['max']} s). Router dev vote: "
        f"{votes(dev['before'])} before, {votes(dev['after'])} after. Unseen questions routed right before and not "
        f"after: {len(regressions)}" + (f" ({listed})." if regressions else "."),
        f"Pairs whose rated phrasing had been misrouted ({pairs['n']}): the unseen paraphrase was "
        + ", ".join(f"{k} {v}" for k, v in pairs["outcomes"].items()) + ".",
        table(["pair", "rated phrasing", "after", "unseen phrasing", "unseen: before → after"], pair_rows)
        if pair_rows else "",
        conditions(data),
    ])


def server_settings(data: dict[str, Any]) -> str:
    def served(block: dict[str, Any]) -> str:
        counts = Counter(r.get("served_by", block["setting"]) for r in block["requests"])
        return ", ".join(f"{name}: {n}" for name, n in sorted(counts.items()))

    rows = [[f"`{b['setting']}`", "busy neighbour" if b["busy_neighbour"] else "idle",
             b["decode_tokens_per_s"]["p50"], b["prompt_tokens_per_s_first_reads"]["p50"],
             ", ".join(str(n) for n in b["prompt_tokens_evaluated_on_repeats"]), served(b)] for b in data["blocks"]]
    return _join([
        "**llama-server threads** (`bench/server_settings.py`): the supervised server at each setting, on an idle "
        "machine and beside a process (not a child of ours) that keeps one core busy; requests alternate two long "
        "system prompts, so the prompt-cache column shows each prefix restored (tokens evaluated on a repeat). "
        "`adaptive`, the default on 2-4 cores, runs `-t 2` and `-t 1 -tb 2` side by side and sends each request "
        "to the one the other processes' CPU use calls for (`SME_LOCAL__ADAPTIVE_THREADS`; setting "
        "`SME_LOCAL__THREADS` fixes one instead).",
        table(["setting", "machine", "generated tok/s (p50)", "prompt tok/s (first reads)",
               "prompt tokens evaluated on repeats", "served by"], rows),
        conditions(data),
    ])


def replicas(data: dict[str, Any]) -> str:
    st = data["settings"]
    rows = [[f"`{r['layout']}`", r["wall_s"], r["calls_per_min"], r["generated_tok_per_s"], r["latency_s"]["p50"],
             r["latency_s"]["p95"], ", ".join(f"{k}: {v}" for k, v in sorted(r["served_by"].items()))]
            for r in data["layouts"]]
    return _join([
        "**Replicas, threads and slots** (`bench/replicas.py`): the same block of "
        f"{st['calls']} chat calls (up to {st['max_tokens']} tokens each), {st['concurrency']} at a time, through the "
        "LiteLLM Router the experts use, with one llama-server at two thread settings, one with two slots "
        "(`-np 2`), and two replicas (`SME_LOCAL__REPLICAS=2`) of one core each.",
        table(["layout", "wall s", "calls/min", "generated tok/s (sum)", "latency p50 s", "latency p95 s",
               "calls per deployment"], rows),
        conditions(data),
    ])


def grounding(data: dict[str, Any]) -> str:
    labels = {"squad_demo": "SQuAD questions of the demo corpus (the documents answer them)",
              "nq_open_dev": "NQ-open dev questions (the documents rarely answer them)"}
    outcomes = ("grounded", "partial", "not_grounded", "not_in_documents")
    rows = [[labels.get(name, name), s["n"], *(f"{s['share'][o]:.1%}" for o in outcomes),
             s["seconds_per_question"]["p50"]] for name, s in data["sets"].items()]
    squad = data["sets"].get("squad_demo", {})
    wrong_rows = []
    if "distractors_answer_absent" in squad:
        for key, label in (("tune", "tune (the rule was chosen here)"), ("report", "report")):
            gold, near = squad["halves"][key], squad["distractors"][key]
            absent = squad["distractors_answer_absent"][key]
            wrong_rows.append([label, f"{gold['share']['grounded']:.1%} of {gold['n']}",
                               f"{near['share']['grounded']:.1%} of {near['n']}",
                               f"{absent['share']['grounded']:.1%} of {absent['n']}"])
    return _join([
        "**Grounding labels** (`bench/grounding.py`, no LM): each question retrieved as the general expert retrieves "
        f"it (k={data['k']}, similarity floor {data['min_similarity']}), and the lexical grounding check run on the "
        "gold answer, as if the model had answered right. It measures the check and retrieval, not the model.",
        table(["questions", "n", *outcomes, "retrieval + check p50 s"], rows),
        "Right against wrong: on each half of the SQuAD questions (split by a hash of the id), the share labelled "
        "`grounded` of the gold answers and of wrong answers of the same shape taken from the passages (another "
        "number or name, from the sentence sharing most words with the question), drawn from all the passages shown "
        "(often the very sentence that holds the right answer) and with the passages naming the right answer "
        "removed (the documents do not say). Lower is better for the wrong ones." if wrong_rows else "",
        table(["half", "gold answers grounded", "wrong answers grounded", "wrong answers grounded, answer absent"],
              wrong_rows) if wrong_rows else "",
        conditions(data),
    ])


def prompt_identity(data: dict[str, Any]) -> str:
    rows = [[domain, f"{d['identical']}/{d['items']}", d["requests"], ", ".join(d["differing"]) or "–"]
            for domain, d in data["domains"].items()]
    a, b = data["a"], data["b"]
    return _join([
        f"**What the model is sent, before and after a change** (`bench/prompt_identity.py`): the first {a['limit']} "
        "dev questions of each built-in gold set answered through the question path at two commits, with every LM "
        "role pointed at a local endpoint that records each request and replies with well-formed canned fields; an "
        f"item is identical when every request it made is byte for byte the same. Commits: `{a['commit']}` and "
        f"`{b['commit']}`. It compares prompts, not answers: at temperature 0 identical prompts should give the same "
        "answers (the router's re-run after the refactor gave the same items right and wrong).",
        table(["gold set", "items identical", "LM requests", "items that differ"], rows),
    ])


def retrieval_rerank(data: dict[str, Any]) -> str:
    ks = (1, 2, 3, 4, 5)
    in_pool = f"recall@pool{data['pool']}"
    rows = [[name, *(f"{v['tune'][f'recall@{k}']:.3f} / {v['report'][f'recall@{k}']:.3f}" for k in ks),
             f"{v['report'][in_pool]:.3f}", v["seconds_per_question"]["p50"]]
            for name, v in data["variants"].items()]
    chosen = data["chosen_on_tune"]
    return _join([
        f"**Is the supporting passage among those shown?** (`bench/retrieval_rerank.py`, no LM): the "
        f"{data['questions']} SQuAD questions of the demo corpus searched in the data dir's collection with a pool of "
        f"{data['pool']} hits (similarity floor {data['min_similarity']}); a hit supports a question when it comes "
        "from its article and holds a gold answer. Recall@k on the tune / report halves, per order of the pool: the "
        "search's (`hybrid`), by how much of the question a passage's best sentence covers (`lexical`), the two "
        "fused by reciprocal rank (`fused`), each also with the query cut to its content words (`+rewritten`). "
        f"Chosen on the tune half by recall@{data['k']}: `{chosen['variant']}`, which the general expert uses.",
        table(["order", *(f"recall@{k}" for k in ks), f"in the pool of {data['pool']} (report)",
               "search + order p50 s"], rows),
        conditions(data),
    ])


def context_window(data: dict[str, Any]) -> str:
    rows = [[name, f"{c['tune']['answer_shown']:.3f} / {c['report']['answer_shown']:.3f}",
             f"{c['tune']['kept_when_whole_had_it']:.3f} / {c['report']['kept_when_whole_had_it']:.3f}",
             f"{c['report']['chars']['mean']:.0f}"] for name, c in data["cuts"].items()]
    chosen = data["chosen_on_tune"]
    return _join([
        f"**How much of the passages can be cut?** (`bench/context_window.py`, no LM): the {data['questions']} SQuAD "
        "questions of the demo corpus with the passages the general expert is shown, each passage cut to its `keep` "
        "sentences covering most of the question and `window` sentences either side (`experts/context_window.py`). "
        "Share of questions whose gold answer is still shown, and among those whose whole passages showed it, on the "
        f"tune / report halves; characters shown (report). Chosen on the tune half ({chosen['by']}): "
        f"`{chosen['cut']}`. The expert shows whole passages until an LM run measures the cut's exact match.",
        table(["cut", "answer shown", "kept when whole had it", "characters shown"], rows),
        conditions(data),
    ])


def code_plain_prompt(data: dict[str, Any]) -> str:
    setup = data["setup"]
    rows = [[arm, f"{a['passed']}/{a['n']}", f"[{a['ci95'][0]:.2f}, {a['ci95'][1]:.2f}]", a["seconds_per_item"]["p50"],
             a["completion_tokens_per_item"]["mean"]] for arm, a in data["arms"].items()]
    paired = data.get("paired", {})
    pairs = "; ".join(f"{k.replace('_', ' ')}: {len(v)}" for k, v in paired.items() if isinstance(v, list))
    return _join([
        "**Plain chat prompt or the DSPy write?** (`bench/code_plain_prompt.py`): the model's MBPP figure comes from a "
        f"plain chat prompt; here the first {setup['n']} code {setup['split']} items are asked both ways, one greedy "
        "call each with no verification: `plain` (system \"You are a helpful assistant.\", the question as the user "
        "message, the first code block is the answer) and `dspy` (the code expert's `ChainOfThought(WriteCode)` "
        "through ChatAdapter). Scored against all of MBPP's asserts."
        + (f" Paired: {pairs}, McNemar p = {paired.get('mcnemar_p')}." if pairs else ""),
        table(["arm", "passed", "95% CI", "s/item p50", "tokens generated/item"], rows),
        conditions(data),
    ])


def _policy_table(data: dict[str, Any]) -> str:
    """The policies of a `bench/code_no_tests.py` result, the chosen one marked."""
    rows = [[policy + (" (chosen)" if policy == data.get("chosen") else ""), f"{v['passed']}/{v['n']}",
             f"[{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]", v["lm_calls_mean"], v["seconds"]["p50"], v["seconds"]["p95"],
             v["seconds"]["max"], v["over_60_s"]] for policy, v in data["policies"].items()]
    return table(["policy", "gold pass", "95% CI", "LM calls/item", "s p50", "s p95", "s max", "> 60 s"], rows)


def code_no_tests(data: dict[str, Any]) -> str:
    setup = data["setup"]
    return _join([
        "**Code questions without tests: what checks, repairs and the alternative are worth** "
        f"(`bench/code_no_tests.py`): the first {setup['n']} code {setup['split']} items asked as a user would, the "
        "example assert removed and the function's name given in words. The expert ran each with its full budget, "
        "every attempt recorded; each attempt's code was scored against all of MBPP's asserts (never shown). The "
        "cheaper policies are prefixes of that run: `write only` (1 call, no checks; not eligible, an answer must say "
        "what its own checks showed), `checks, no repair` (the write returned, its checks reported), `checks, 1 "
        "repair` and `full` (2 repairs, then an alternative at temperature 0.7); the version passing most of the "
        f"expert's own checks is returned. Rule fixed before the run: {setup['rule']}. The chosen policy is the "
        "default of `SME_CODE_CALLS_WITHOUT_TESTS`.",
        _policy_table(data),
        conditions(data),
        code_no_tests_predict(load("code_no_tests_predict")),
    ])


def code_no_tests_predict(data: dict[str, Any] | None) -> str:
    if not data:
        return ""
    paired = data.get("paired") or {}
    return _join([
        f"The same items written {'with' if data['setup']['reasoning'] else 'without'} reasoning "
        f"(`--reasoning {'on' if data['setup']['reasoning'] else 'off'} --max-calls {data['setup']['max_calls']}`)"
        + (f"; paired with the run above on `{paired['policy']}`: {len(paired['only_this_run'])} items passed only "
           f"here, {len(paired['only_other_run'])} only there, McNemar p = {paired['mcnemar_p']}" if paired else "")
        + ". Rule fixed before the run: without reasoning for questions without tests if it passes at least as many "
        "items as with reasoning less one; the outcome is the default of `SME_CODE_REASONING_WITHOUT_TESTS`.",
        _policy_table(data),
        conditions(data),
    ])


def code_samples(data: dict[str, Any]) -> str:
    setup = data["setup"]
    rows = [[name + (" (chosen)" if name == data.get("chosen") else ""), v["max_calls"], f"{v['passed']}/{v['n']}",
             f"[{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]", v["lm_calls_mean"], v["seconds"]["p50"],
             v["seconds"]["p95"], v["seconds"]["max"], v["over_60_s"],
             f"{v['vs_today']['only_this']} / {v['vs_today']['only_today']} (p {v['vs_today']['mcnemar_p']})"]
            for name, v in data["policies"].items()]
    return _join([
        "**Code that fails the question's test: repairs or fresh samples?** (`bench/code_samples.py`): the first "
        f"{setup['n']} code {setup['split']} items, asked as the gold set asks them (task text and its first "
        "assert). Each item ran once: the expert's own flow (greedy write, repairs while they change the failure, "
        f"a sample at temperature {setup['temperature']}), then, when the write failed the shown test, further "
        f"samples up to {setup['samples']}; every version scored against all of MBPP's asserts. Each policy is read "
        "off that run: its steps in order, stopping at the first version that passes the shown test; the version "
        "passing most shown tests is returned. The last column pairs each policy with the default at the time of the "
        "run, `2 repairs, 1 sample` (items only it passes / only that one passes, McNemar p). Rule fixed before the "
        f"run: {setup['rule']}. The chosen policy sets the defaults of `SME_CODE_REPAIR_ATTEMPTS` and "
        "`SME_CODE_ALTERNATIVES`.",
        table(["policy", "calls ≤", "gold pass", "95% CI", "LM calls/item", "s p50", "s p95", "s max", "> 60 s",
               "only this / only the earlier default"], rows),
        conditions(data),
    ])


def math_implausible(data: dict[str, Any]) -> str:
    setup = data["setup"]
    rows = [[name + (" (chosen)" if name == data.get("chosen") else ""), f"{v['correct']}/{v['n']}",
             f"[{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]", f"{v['implausible_right']}/{v['implausible_items']}",
             v["still_implausible"], v["lm_calls_mean"], v["seconds"]["p50"], v["seconds"]["p95"],
             f"{v['vs_today']['only_this']} / {v['vs_today']['only_today']} (p {v['vs_today']['mcnemar_p']})"]
            for name, v in data["policies"].items()]
    return _join([
        "**Word-problem answers that cannot be right** (`bench/math_implausible.py`): the "
        f"{setup['n']} math {setup['split']} word problems, asked of the math program's word-problem path "
        f"(program {setup['program']}), DSPy's caches off. A program's answer is implausible "
        "(`experts/math_program.py::implausible_answer`) when it is words for an amount, a negative number where "
        "nothing can be negative, or a fraction that runs on where nothing is a rate or a share. Each item ran once; "
        "for an implausible answer both a fix (the program sent back with why its answer cannot be right) and a "
        f"fresh program at temperature {setup['temperature']} were made, so each policy is read off that run; an "
        "answer no step mends is returned with a failed check. The last column pairs each policy with `none` (items "
        f"only it gets right / only `none` does, McNemar p). Rule fixed before the run: {setup['rule']}. The chosen "
        "policy is the default of `SME_MATH_IMPLAUSIBLE_RETRY`.",
        table(["policy", "right", "95% CI", "implausible items right", "still implausible", "LM calls/item",
               "s p50", "s p95", "only this / only none"], rows),
        conditions(data),
    ])


def math_vote(data: dict[str, Any]) -> str:
    setup, agreement = data["setup"], data["agreement"]
    rows = [[name + (" (chosen)" if name == data.get("chosen") else ""), f"{v['correct']}/{v['n']}",
             f"[{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]", v["lm_calls_mean"], v["seconds"]["p50"], v["seconds"]["p95"],
             f"{v['vs_today']['only_this']} / {v['vs_today']['only_today']} (p {v['vs_today']['mcnemar_p']})"]
            for name, v in data["policies"].items()]
    return _join([
        "**Word problems: one program or several that vote?** (`bench/math_vote.py`): the "
        f"{setup['n']} math {setup['split']} word problems, asked of the math expert (program {setup['program']}: "
        "the greedy program, one fix, chain of thought), then two fresh programs at temperature "
        f"{setup['temperature']} each, DSPy's caches off. `agree_or_third`: the greedy answer when the first sample "
        "agrees, else the answer two of three share; `vote_of_3`: the answer two of three share (greedy when all "
        "differ). The last column pairs each policy with `greedy` (items only it gets right / only greedy does, "
        f"McNemar p). Rule fixed before the run: {setup['rule']}. Greedy and the first sample agreed on "
        f"{agreement.get('agree', 0)} items (greedy right on {agreement.get('agree_right', 0)}) and disagreed on "
        f"{agreement.get('disagree', 0)} (right on {agreement.get('disagree_right', 0)}).",
        table(["policy", "right", "95% CI", "LM calls/item", "s p50", "s p95", "only this / only greedy"], rows),
        conditions(data),
    ])


def _arm_rows(data: dict[str, Any], arms: tuple[str, ...], fields: list[str]) -> list[list[Any]]:
    """One row per arm of a decision benchmark's JSON: the arm (marked when the rule chose it), right/n, the
    `fields` asked for ("latency_s.p50" reads data[arm]["latency_s"]["p50"]), and its receipt as a link."""
    def value(arm: str, field: str) -> Any:
        found = data[arm]
        for key in field.split("."):
            found = found[key]
        return found

    chosen = data["decision"]["chosen"]
    return [[arm + (" (chosen)" if arm == chosen else ""), f"{data[arm]['correct']}/{data[arm]['n']}",
             *(value(arm, f) for f in fields), f"[{data[arm]['receipt']}](receipts/{data[arm]['receipt']})"]
            for arm in arms]


def math_word_problems(data: dict[str, Any]) -> str:
    d = data["decision"]
    rows = _arm_rows(data, ("reasoning", "program"), ["latency_s.p50", "latency_s.p95", "latency_s.max",
                                                       "lm_calls.p50", "completion_tokens.p50"])
    return _join([
        "**Word problems: chain of thought or a program?** (`bench/math_word_problems.py`): the "
        f"{len(data['items'])} math {data['split']} items that are not symbolic requests (GSM8K word problems), each "
        "scored with `sme-mcp eval --goldset` under `SME_MATH_WORD_PROBLEMS=reasoning` (ChainOfThought with the "
        "shipped program's demos) and `=program` (the model writes a short Python program, the sandbox runs it, one "
        "fix, chain of thought if that fails too), DSPy's response cache off. Paired: "
        f"{d['only_reasoning_right']} right only with reasoning, {d['only_program_right']} only with a program, "
        f"McNemar p = {d['mcnemar_p']}. Rule fixed before the run: {d['rule']}; the outcome is the default of "
        "`SME_MATH_WORD_PROBLEMS`.",
        table(["word problems by", "right", "p50 s", "p95 s", "max s", "LM calls p50", "tokens generated p50",
               "receipt"], rows),
        conditions(data),
    ])


def general_draft_first(data: dict[str, Any]) -> str:
    d = data["decision"]
    rows = _arm_rows(data, ("passages", "draft_first"), ["mean_f1", "latency_s.p50", "latency_s.p95", "latency_s.max",
                                                           "lm_calls.p50", "prompt_tokens_evaluated.p50",
                                                           "completion_tokens.p50"])
    return _join([
        "**General answers: the model's own answer first?** (`bench/general_draft_first.py`): the "
        f"{len(data['items'])} {data['questions']}, each scored with `sme-mcp eval --goldset` under "
        "`SME_GENERAL_DRAFT_FIRST=false` (the model always reads the 3 passages, ChainOfThought) and `=true` (it "
        "first answers from its own knowledge, and that answer is returned when the grounding check finds it in a "
        "passage sentence covering the question; otherwise the passages are read), DSPy's response cache off. "
        f"Drafts returned: {d['drafted']['n']}, {d['drafted']['correct']} of them right. Paired: "
        f"{d['only_passages_right']} right only with the passages always read, {d['only_draft_first_right']} only "
        f"with a draft first, McNemar p = {d['mcnemar_p']}. Rule fixed before the run: {d['rule']}; the outcome is "
        "the default of `SME_GENERAL_DRAFT_FIRST`.",
        table(["general answers", "exact match", "token F1", "p50 s", "p95 s", "max s", "LM calls p50",
               "prompt tokens evaluated p50", "tokens generated p50", "receipt"], rows),
        conditions(data),
    ])


def general_brief_reasoning(data: dict[str, Any]) -> str:
    d = data["decision"]
    rows = _arm_rows(data, ("step_by_step", "brief"), ["mean_f1", "latency_s.p50", "latency_s.p95", "latency_s.max",
                                                         "prompt_tokens_evaluated.p50", "completion_tokens.p50"])
    return _join([
        "**General answers: step-by-step reasoning or one quoting sentence?** (`bench/general_brief_reasoning.py`): "
        f"the {len(data['items'])} {data['questions']}, each scored with `sme-mcp eval --goldset` under "
        "`SME_GENERAL_BRIEF_REASONING=false` (ChainOfThought's step-by-step reasoning before the answer) and "
        "`=true` (the reasoning field asks for one short sentence quoting the passage words that answer), DSPy's "
        f"response cache off. Paired: {d['only_step_by_step_right']} right only step by step, "
        f"{d['only_brief_right']} only brief, McNemar p = {d['mcnemar_p']}. Rule fixed before the run: {d['rule']}; "
        "the outcome is the default of `SME_GENERAL_BRIEF_REASONING`.",
        table(["reasoning", "exact match", "token F1", "p50 s", "p95 s", "max s", "prompt tokens evaluated p50",
               "tokens generated p50", "receipt"], rows),
        conditions(data),
    ])


def speculative_ngram(data: dict[str, Any]) -> str:
    n = len({r["prompt"] for r in data["rows"]})
    rows = [[s["setting"], f"`{s['flags']}`" if s["flags"] else "–", s["decode_tokens_per_s"]["p50"],
             s["per_token_vs_none"]["p50"], f"{s['draft_accepted']}/{s['draft_n']}", f"{s['same_text']}/{n}"]
            for s in data["settings"]]
    return _join([
        "**Speculative decoding from n-grams** (`bench/speculative_ngram.py`): the supervised llama-server "
        "(`-t 2`, the weight layout setup chose) with each of its draft-model-free speculation settings, the same "
        f"{n} prompts once each, greedy, up to {data['max_tokens']} tokens, no prompt cache (a code answer in the "
        "code expert's field format, a function with asserts, a passage-reading answer, a repair of failing code). "
        "Time per token is the decode time per token written against plain decoding of the same prompt (below 1: "
        "faster); same text: answers identical to plain decoding's. None is used by default.",
        table(["setting", "flags", "decode tok/s (p50)", "time per token vs none (p50)", "drafts accepted",
               "same text"], rows),
        conditions(data),
    ])


def grounding_judge(data: dict[str, Any]) -> str:
    d, t = data["decision"], data["judge"]
    rows = [[label, c["n"], c["correct"]] for label, c in t["judged"].items()]
    nq = data.get("nq_open")
    nq_line = "" if not nq else (
        f"Reported only, {nq['questions']} (the demo corpus mostly does not answer them): {nq['n']} answers, "
        f"{nq['lexically_grounded']['n']} called grounded by the lexical check ({nq['lexically_grounded']['correct']} "
        f"right), {nq['judged']['confirmed']['n']} of them confirmed by the judge "
        f"({nq['judged']['confirmed']['correct']} right); outcomes: "
        + ", ".join(f"{o} {n} ({r} right)" for o, (n, r) in _outcomes(nq["items"]).items())
        + f"; receipt [{nq['receipt']}](receipts/{nq['receipt']}).")
    return _join([
        "**General answers: a judge of the sentence behind `grounded`** (`bench/grounding_judge.py`): the "
        f"{t['n']} {data['questions']}, scored with `sme-mcp eval --goldset` under `SME_GENERAL_JUDGE_GROUNDING=true`, "
        f"DSPy's response cache off (receipt [{data['receipt']}](receipts/{data['receipt']}); exact match "
        f"{t['correct']}/{t['n']}, p50 {t['latency_s']['p50']} s). Of the answers the lexical check called grounded "
        f"({t['lexically_grounded']['n']}, {t['lexically_grounded']['correct']} right), the model, shown the sentence "
        f"found, withdrew the label from {d['withdrawn_from_wrong']} wrong and {d['withdrawn_from_right']} right ones: "
        f"the share of `grounded` answers that are right goes from {d['grounded_precision_lexical']} to "
        f"{d['grounded_precision_judged']}. A judgment took p50 {t['judge_seconds']['p50']} s (p95 "
        f"{t['judge_seconds']['p95']} s). Rule fixed before the run: {d['rule']}; chosen: **{d['chosen']}**, the "
        "default of `SME_GENERAL_JUDGE_GROUNDING`.",
        table(["judge's verdict on a lexically grounded answer", "answers", "right"], rows),
        nq_line,
        conditions(data),
    ])


def _outcomes(items: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Per verification outcome, most frequent first: how many answers had it and how many of those were right."""
    counts: dict[str, list[int]] = {}
    for item in items:
        cell = counts.setdefault(str(item.get("outcome")), [0, 0])
        cell[0] += 1
        cell[1] += bool(item.get("correct"))
    return {o: (n, r) for o, (n, r) in sorted(counts.items(), key=lambda kv: -kv[1][0])}


def weight_layout(data: dict[str, Any]) -> str:
    ref = data["reference"]
    rows = [[x["threads"], "repacked" if x["repack"] else "plain (`--no-repack`)", x["prompt_tokens_per_s"]["p50"],
             x["generated_tokens_per_s"]["p50"], x["reference_s"]["p50"]] for x in data["layouts"]]
    text = ("**Repacked or plain weights** (`bench/weight_layout.py`): llama.cpp repacks quantized weights into "
            "interleaved layouts at load unless started with `--no-repack`; `sme-mcp setup` times one probe answer "
            "each way and keeps the faster for that build and model (`server/repack_choice.py`). The same probe "
            f"(about 690 prompt tokens read without the cache, 48 written), {len(data['probes']) // len(rows)} "
            "rounds alternating the layouts, one llama-server at a time. Last column: the seconds each layout "
            f"takes for {ref['prompt_tokens']} prompt tokens read and {ref['generated_tokens']} written (a median "
            "general answer), what setup compares.")
    asked = [(name, load(name)) for name in ("user_questions_repacked", "user_questions_no_repack")]
    if all(d for _, d in asked):
        (_, a), (_, b) = asked
        sa, sb = a["routed"]["summary"], b["routed"]["summary"]
        text += (f" The user questions (`bench/user_questions.py`) asked with repacked weights "
                 f"(`user_questions_repacked.json`, {a['conditions']['git_commit']}): {sa['correct']}/{sa['n']} "
                 f"right, p50 {sa['latency_s']['p50']} s, p95 {sa['latency_s']['p95']} s; with plain weights "
                 f"(`SME_LOCAL__REPACK=false`, `user_questions_no_repack.json`, {b['conditions']['git_commit']}): "
                 f"{sb['correct']}/{sb['n']} right, p50 {sb['latency_s']['p50']} s, p95 {sb['latency_s']['p95']} s.")
    return _join([text, table(["threads", "weights", "prompt tok/s (p50)", "decode tok/s (p50)",
                               f"{ref['prompt_tokens']} read + {ref['generated_tokens']} written, s (p50)"], rows),
                  conditions(data)])


def _join(parts: list[str]) -> str:
    return "\n\n".join(p for p in parts if p)


def section() -> str:
    parts = [
        "<!-- Generated by bench/report.py from bench/results/*.json; run `.venv/bin/python bench/run_all.py` -->",
        "Scripts, not tests: `.venv/bin/python bench/run_all.py` runs every benchmark, draws the charts and "
        "rewrites this section (about 45–60 minutes on 2 cores). The numbers below were measured on a shared "
        "2-core machine while other jobs ran, so each block states the load it saw.",
    ]
    for name, render in (("user_questions", user_questions), ("learning_from_use", learning_from_use),
                         ("server_settings", server_settings), ("weight_layout", weight_layout),
                         ("replicas", replicas),
                         ("startup", startup), ("sympy_latency", sympy), ("fast_path", fast_path),
                         ("lm_overhead", lm_overhead), ("concurrency", concurrency), ("retrieval", retrieval),
                         ("retrieval_gate", retrieval_gate), ("retrieval_rerank", retrieval_rerank),
                         ("context_window", context_window), ("grounding", grounding),
                         ("code_plain_prompt", code_plain_prompt), ("code_no_tests", code_no_tests),
                         ("code_samples", code_samples),
                         ("math_word_problems", math_word_problems), ("math_implausible", math_implausible),
                         ("math_vote", math_vote),
                         ("general_draft_first", general_draft_first),
                         ("grounding_judge", grounding_judge), ("general_brief_reasoning", general_brief_reasoning),
                         ("speculative_ngram", speculative_ngram),
                         ("prompt_identity", prompt_identity)):
        data = load(name)
        parts.append(render(data) if data else f"*`bench/{name}.py`: not measured yet.*")
    parts.append(scores())
    return "\n\n".join(p for p in parts if p)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"README.md has no {BEGIN} ... {END} section", file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{section()}\n{END}{tail}"
    if args.check:
        if new != text:
            print("README.md benchmark section is out of date; run bench/report.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        readme.write_text(new, encoding="utf-8")
    print("README.md benchmark section up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
