#!/usr/bin/env bash
# Installs everything (scripts/setup.sh) and runs the whole test suite, real-model tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The integration tests must run, not skip, wherever this script is used (CI included).
export SME_REQUIRE_MODEL=1
exec .venv/bin/pytest "$@"
