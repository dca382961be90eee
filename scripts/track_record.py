"""Regenerates experts/track_record.json from the receipts: per expert, how many answers of its newest evaluation
with verified items had each verification outcome, and how many of them were right (never edit it by hand).

    .venv/bin/python scripts/track_record.py          # rewrite experts/track_record.json
    .venv/bin/python scripts/track_record.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sme_mcp.experts.track_record import RECORD_PATH, build
from sme_mcp.optimize.receipts import load_receipts

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = json.dumps(build(load_receipts(ROOT / "receipts")), indent=1) + "\n"
    path = ROOT / "experts" / RECORD_PATH.name
    if args.check:
        return 0 if path.exists() and path.read_text() == text else 1
    path.write_text(text)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
