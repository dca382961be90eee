"""The README's results table is generated from receipts/ and must match them (never hand-edited)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_results_table_matches_the_receipts():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "receipts_table.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, "README table is stale: run .venv/bin/python scripts/receipts_table.py"
