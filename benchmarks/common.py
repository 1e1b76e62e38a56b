"""Shared bits of the benchmark scripts."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_DATA = ROOT.parent / "shared" / "data"
EMPS = SHARED_DATA / "emps-dev"
EMPS_VAL = SHARED_DATA / "emps-val"  # the check set: never choose settings on it
GRAINS = SHARED_DATA / "grain-photos"


def require(path: Path, what: str) -> Path:
    if not path.exists():
        print(f"skipped: {what} not found at {path}", file=sys.stderr)
        raise SystemExit(0)
    return path


def emps_set(name: str) -> Path:
    """The EMPS folder for ``dev`` (where settings are chosen) or ``val``
    (the check set)."""
    return {"dev": EMPS, "val": EMPS_VAL}[name]


def emps_arguments(parser) -> None:
    """``--set``, ``--images`` and ``--masks`` of a benchmark scored
    against expert masks."""
    parser.add_argument("--set", choices=("dev", "val"), default="dev",
                        help="EMPS photos: dev (settings are chosen here) or val (the check set)")
    parser.add_argument("--images", type=Path, help="photos (default: the --set's)")
    parser.add_argument("--masks", type=Path, help="expert masks (default: the --set's)")


def emps_folders(args) -> tuple[Path, Path]:
    """The photos and expert masks ``args`` name (the ``--set``'s unless
    given), leaving with a clear line where either is absent."""
    images = require(args.images or emps_set(args.set) / "images", "photos")
    masks = require(args.masks or emps_set(args.set) / "masks", "expert masks")
    return images, masks


def write_rows(path: Path, rows: list[dict]) -> None:
    """``rows`` (dicts with the same keys) as a CSV file."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def spread(values, names, worst: int = 5) -> str:
    """Mean, 10th percentile and the ``worst`` lowest values with their names."""
    import numpy as np

    values = np.asarray(values, float)
    order = np.argsort(values)[:worst]
    low = ", ".join(f"{names[i]} {values[i]:.2f}" for i in order)
    return f"mean {values.mean():.3f}, 10th percentile {np.percentile(values, 10):.3f}; lowest: {low}"
