"""Shared bits of the benchmark scripts."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_DATA = ROOT.parent / "shared" / "data"
EMPS = SHARED_DATA / "emps-dev"
GRAINS = SHARED_DATA / "grain-photos"


def require(path: Path, what: str) -> Path:
    if not path.exists():
        print(f"skipped: {what} not found at {path}", file=sys.stderr)
        raise SystemExit(0)
    return path
