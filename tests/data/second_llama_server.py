"""A second llama-server-compatible binary, for the supervisor's tests: the interface bitnet.cpp's fork offers.

It takes llama-server's flags, answers `--version` on stderr, logs the model's training context the way
older llama.cpp loaders (and bitnet.cpp's fork) do, serves `/health` and `/v1/models` (without the
`meta` block newer builds add), and, like the fork, refuses a `--chat-template` that is not one of
its built-in names: it prints the reason, then a screenful of shutdown lines, and exits 1.
It loads no model: the file named by `-m` is only checked to exist.

With `SECOND_SERVER_AMX_CRASH=1` it stands for llama.cpp's build on a CPU whose AMX the VM does not let a process
use: its `--help` lists `--no-repack`, and without that flag it dies of SIGSEGV while "loading".

With `SECOND_SERVER_TIMINGS='{"repacked": [90, 14.5], "plain": [139, 13.6]}'` (prompt and decode tokens/s per
layout) its `--help` lists `--no-repack` and it answers `POST /v1/chat/completions` with llama-server's `timings`
for the layout it was started with, so setup's repacking measurement has two layouts to compare
(`'{"no_timings": true}'`: the answer carries no `timings`, as another OpenAI-compatible server's would not).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

VERSION = "version: 4242 (second-server-test)\nbuilt with a Python test double for x86_64-linux"
N_CTX_TRAIN = 2048
BUILT_IN_TEMPLATES = {"chatml", "llama2", "llama3", "phi3", "zephyr", "monarch", "gemma", "orion"}


def main() -> int:
    if "--version" in sys.argv:
        print(VERSION, file=sys.stderr)
        return 0
    amx_crash = os.environ.get("SECOND_SERVER_AMX_CRASH") == "1"
    speeds = json.loads(os.environ.get("SECOND_SERVER_TIMINGS", "null"))
    if "--help" in sys.argv:
        print("-m, --model FNAME\n--port PORT\n--chat-template JINJA_TEMPLATE")
        if amx_crash or speeds:
            print("--repack, -nr, --no-repack              whether to enable weight repacking (default: enabled)")
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("-m", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chat-template", default=None)
    args, _ = parser.parse_known_args()
    print("main: build = 4242 (second-server-test)", flush=True)
    if not Path(args.m).is_file():
        print(f"llama_model_load: error loading model: failed to open {args.m}", flush=True)
        return 1
    print(f"llm_load_print_meta: n_ctx_train      = {N_CTX_TRAIN}", flush=True)
    if amx_crash and "--no-repack" not in sys.argv:
        print("init: llama threadpool init, n_threads = 2", flush=True)
        signal.signal(signal.SIGSEGV, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGSEGV)
    if args.chat_template is not None and args.chat_template not in BUILT_IN_TEMPLATES:
        print(f"main: error: the supplied chat template is not supported: {args.chat_template[:40]}", flush=True)
        print("main: note: llama.cpp does not use jinja parser, we only support commonly used templates", flush=True)
        for i in range(20):  # what the fork prints while it frees everything
            print(f"llama_free: freeing buffer {i} (CPU)", flush=True)
        return 1

    class Handler(BaseHTTPRequestHandler):
        def send_json(self, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/health":
                body = {"status": "ok"}
            elif self.path == "/v1/models":
                body = {"object": "list", "data": [{"id": "local", "object": "model"}]}
            else:
                self.send_error(404)
                return
            self.send_json(body)

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/v1/chat/completions" or not speeds:
                self.send_error(404)
                return
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            answer: dict[str, object] = {"choices": [{"message": {"role": "assistant", "content": "A summary."}}]}
            if not speeds.get("no_timings"):
                prompt_per_s, decode_per_s = speeds["plain" if "--no-repack" in sys.argv else "repacked"]
                answer["timings"] = {"prompt_n": 450, "prompt_per_second": prompt_per_s, "predicted_n": 48,
                                     "predicted_per_second": decode_per_s}
            self.send_json(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"main: server is listening on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
