"""Does a change alter what the experts send the model? Records every LM request of the question path.

A refactor that keeps every request the model sees byte for byte keeps every receipt: the model is
run greedily (temperature 0), so the same prompts give the same answers. This script answers the
first N dev questions of each built-in gold set through `ExpertService.ask`, as `run_eval` does,
with every LM role pointed at a small local OpenAI-compatible endpoint that records each request
(its messages, hashed) and answers with a well-formed value for every output field the adapter
asks for, so each expert runs its whole path (tools, the sandbox, repairs, the exact math path)
deterministically. Run it on two checkouts and compare:

    SME_DATA_DIR=/tmp/pi-a python bench/prompt_identity.py --out /tmp/a.json          # checkout A
    SME_DATA_DIR=/tmp/pi-b python bench/prompt_identity.py --out /tmp/b.json          # checkout B
    python bench/prompt_identity.py --compare /tmp/a.json /tmp/b.json --write bench/results/prompt_identity.json

Give each run a data dir holding the demo corpus's index (copy `documents/` from the setup's data dir), or
the general expert retrieves nothing and its prompts carry no passages.

It measures the requests, not the model: the replies are canned, so it cannot say whether a
changed prompt would have changed an answer, only whether any prompt changed. The dev split is
used (nothing here is scored); the holdout and the reserved slices are not read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ("router", "math", "code", "general")
_FIELD = re.compile(r"^\d+\. `(\w+)` \((.*?)\)(?::|$)", re.M)


def _output_fields(system: str) -> list[tuple[str, str]]:
    """(name, type) of each output field the adapter's system message lists."""
    if "Your output fields are:" not in system:
        return [("answer", "str")]
    section = system.split("Your output fields are:", 1)[1].split("All interactions will be structured", 1)[0]
    return _FIELD.findall(section)


def _value(name: str, annotation: str) -> Any:
    """A well-formed value of a field: the first choice of a Literal ('finish' for a ReAct step)."""
    if annotation.startswith("Literal"):
        choices = re.findall(r"'([^']*)'", annotation)
        return "finish" if "finish" in choices else (choices[0] if choices else "")
    if annotation == "bool":
        return True
    if annotation == "int":
        return 1
    if annotation == "float":
        return 0.5
    if annotation.startswith("list"):
        return []
    if annotation.startswith("dict"):
        return {}
    return "def f():\n    return 1" if name == "code" else "1"


def reply(body: dict[str, Any]) -> str:
    """The completion for one request: every output field, as JSON or in the chat format it asked for."""
    messages = body.get("messages", [])
    system = next((m.get("content") or "" for m in messages if m.get("role") == "system"), "")
    last = str(messages[-1].get("content") or "") if messages else ""
    fields = {name: _value(name, annotation) for name, annotation in _output_fields(str(system))}
    if body.get("response_format") or "Respond with a JSON object" in last:
        return json.dumps(fields)
    parts = [f"[[ ## {name} ## ]]\n{value}" for name, value in fields.items()]
    return "\n\n".join([*parts, "[[ ## completed ## ]]"])


class Recorder:
    """The endpoint's log: one entry per request, in order."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def record(self, body: dict[str, Any]) -> None:
        messages = json.dumps(body.get("messages", []), sort_keys=True)
        with self.lock:
            self.requests.append({
                "sha256": hashlib.sha256(messages.encode()).hexdigest()[:16],
                "max_tokens": body.get("max_tokens"), "json": bool(body.get("response_format")),
                "stream": bool(body.get("stream")),
            })

    def take(self) -> list[dict[str, Any]]:
        with self.lock:
            taken, self.requests = self.requests, []
        return taken


def serve(recorder: Recorder) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            recorder.record(body)
            content = reply(body)
            if body.get("stream"):  # the experts stream the answer's tokens as progress: one chunk, then done
                chunk = {"id": "pi", "object": "chat.completion.chunk", "created": int(time.time()),
                         "model": body.get("model"),
                         "choices": [{"index": 0, "delta": {"role": "assistant", "content": content},
                                      "finish_reason": None}]}
                end = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                data = f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            out = json.dumps({
                "id": "pi", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def record(limit: int, out: Path) -> None:
    recorder = Recorder()
    server = serve(recorder)
    chain = json.dumps([{"model": "openai/prompt-identity", "api_base": f"http://127.0.0.1:{server.server_port}/v1",
                         "api_key_env": "PI_KEY", "temperature": 0.0}])
    os.environ.update({"PI_KEY": "none", "SME_LOCAL__ENABLED": "false", "SME_USAGE__ENABLED": "false",
                       **{f"SME_{role.upper()}__CHAIN": chain for role in DOMAINS}})
    try:  # checkouts from before the settings moved to config/: their own settings, with their own defaults
        from sme_mcp.experts.settings import Settings
    except ImportError:
        from sme_mcp.config.settings import Settings  # type: ignore[no-redef]
    from sme_mcp.experts.service import ExpertService

    service = ExpertService(Settings(), local=None)
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for domain in DOMAINS:
            rows = [json.loads(line) for line in (ROOT / "goldsets" / domain / "dev.jsonl").read_text().splitlines()
                    if line.strip()][:limit]
            results[domain] = []
            for item in rows:
                try:
                    answer = service.ask(item["question"], None if domain == "router" else domain)
                    outcome = {"domain": answer.domain, "answer": answer.answer[:200]}
                except Exception as exc:  # recorded, not fatal: a failure is part of the path too
                    outcome = {"error": type(exc).__name__}
                results[domain].append({"id": item["id"], **outcome, "requests": recorder.take()})
            print(f"{domain}: {len(rows)} questions, {sum(len(r['requests']) for r in results[domain])} LM requests",
                  file=sys.stderr)
    finally:
        service.close()
        server.shutdown()
    import subprocess

    import sme_mcp.experts.service as code

    where = Path(code.__file__).resolve().parent
    commit = subprocess.run(["git", "-C", str(where), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    out.write_text(json.dumps({"checkout": str(where.parent), "commit": commit, "limit": limit,
                               "settings_env": {k: v for k, v in os.environ.items() if k.startswith("SME_")
                                                and not k.endswith("__CHAIN")},
                               "python": sys.version.split()[0], "results": results}, indent=1))


def compare(a: Path, b: Path, write: Path | None = None) -> int:
    recordings = [json.loads(a.read_text()), json.loads(b.read_text())]
    left, right = (r["results"] for r in recordings)
    summary: dict[str, Any] = {}
    for domain in DOMAINS:
        pairs = list(zip(left.get(domain, []), right.get(domain, []), strict=False))
        same = [x for x, y in pairs if x["id"] == y["id"] and x["requests"] == y["requests"]
                and x.get("answer") == y.get("answer") and x.get("error") == y.get("error")]
        summary[domain] = {"items": len(pairs), "identical": len(same),
                           "requests": sum(len(x["requests"]) for x, _ in pairs),
                           "differing": [x["id"] for x, y in pairs if x not in same][:10]}
        print(f"{domain:8} {len(same)}/{len(pairs)} items identical ({summary[domain]['requests']} LM requests)")
    if write is not None:
        write.parent.mkdir(parents=True, exist_ok=True)
        write.write_text(json.dumps({
            "a": {k: recordings[0].get(k) for k in ("checkout", "commit", "limit", "settings_env")},
            "b": {k: recordings[1].get(k) for k in ("checkout", "commit", "limit", "settings_env")},
            "domains": summary}, indent=1))
        print(f"wrote {write}")
    return 0 if all(s["identical"] == s["items"] for s in summary.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=40, help="dev questions per gold set")
    parser.add_argument("--out", type=Path, help="write the recorded requests here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="compare two recordings")
    parser.add_argument("--write", type=Path, help="with --compare: write the comparison as JSON here")
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare, write=args.write)
    if args.out is None:
        parser.error("--out or --compare is required")
    record(args.limit, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
