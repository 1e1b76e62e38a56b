"""Size histogram: how many objects per diameter bin, with the cumulative
curve (the number-based size distribution whose 10, 50 and 90 % crossings
are D10, D50 and D90)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.atomic import atomic_path

# Beyond this many bars a histogram stops being readable.
_MAX_BINS = 50


def histogram_bins(diameters: np.ndarray) -> np.ndarray:
    """Bin edges for a diameter histogram: numpy's 'auto' rule, at most 50
    bins, at least one."""
    values = np.asarray(diameters, float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.array([0.0, 1.0])
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.array([lo - 0.5, hi + 0.5])
    edges = np.histogram_bin_edges(values, bins="auto")
    if edges.size - 1 > _MAX_BINS:
        edges = np.linspace(lo, hi, _MAX_BINS + 1)
    return edges


def plot_size_histogram(
    diameters: np.ndarray,
    path: str | os.PathLike,
    *,
    unit: str = "px",
    title: str = "",
    dpi: int = 120,
) -> Path:
    """Write a PNG: count per equivalent-diameter bin (bars) and the
    cumulative percentage of objects (line, right axis), with D10/D50/D90
    marked (dotted lines). ``diameters`` are already in ``unit``. Written atomically; an
    empty list gives a plot that says there is nothing to show."""
    # Figure + Agg canvas, no pyplot: no global state, safe in a worker thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = np.asarray(diameters, float)
    values = values[np.isfinite(values)]
    fig = Figure(figsize=(6.4, 4.2), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xlabel(f"equivalent diameter ({unit})")
    ax.set_ylabel("number of objects")
    if values.size == 0:
        ax.text(0.5, 0.5, "no objects measured", ha="center", va="center", transform=ax.transAxes)
    else:
        edges = histogram_bins(values)
        counts, _ = np.histogram(values, bins=edges)
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#4c72b0",
               edgecolor="white", linewidth=0.5, label="count")
        ordered = np.sort(values)
        cumulative = np.arange(1, ordered.size + 1) / ordered.size * 100.0
        right = ax.twinx()
        right.step(ordered, cumulative, where="post", color="#c44e52", linewidth=1.5,
                   label="cumulative")
        right.set_ylim(0, 100)
        right.set_ylabel("cumulative % of objects")
        d10, d50, d90 = np.percentile(values, [10, 50, 90])
        for value in (d10, d50, d90):
            right.axvline(value, color="#555555", linestyle=":", linewidth=1)
        ax.text(0.02, 0.97, f"D10 {d10:.4g}\nD50 {d50:.4g}\nD90 {d90:.4g} {unit}", transform=ax.transAxes,
                ha="left", va="top", fontsize=8, color="#333333")
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    heading = title or "size distribution"
    ax.set_title(f"{heading} (n = {values.size})", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
