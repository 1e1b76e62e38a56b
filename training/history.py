"""The training history: history.csv, the per-epoch log line, curves.png.

No TensorFlow here, so the GUI can read a model folder's history and parse
the live epoch lines without loading Keras.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from core.atomic import atomic_path, write_text_atomic


def format_epoch_line(epoch: int, epochs: int, logs: dict) -> str:
    """The parseable per-epoch log line (``epoch`` counted from 1), e.g.
    ``epoch 3/30: loss=0.41 val_loss=0.38 val_iou_object=0.73``."""
    pairs = " ".join(f"{key}={float(value):.6g}" for key, value in logs.items()
                     if isinstance(value, (int, float)))
    return f"epoch {epoch}/{epochs}: {pairs}"


def parse_epoch_line(line: str) -> tuple[int, int, dict[str, float]] | None:
    """``(epoch, epochs, logs)`` from a line written by
    :func:`format_epoch_line`; ``None`` for any other line."""
    if not line.startswith("epoch ") or ": " not in line:
        return None
    head, _, rest = line.partition(": ")
    try:
        epoch, epochs = (int(v) for v in head[6:].split("/"))
        logs = {k: float(v) for k, v in (item.split("=", 1) for item in rest.split())}
    except ValueError:
        return None
    return epoch, epochs, logs


def read_history(path: str | Path) -> list[dict]:
    """Rows of history.csv (values as strings), [] when absent."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_history(path: str | Path, rows: list[dict]) -> None:
    """Rewrite history.csv atomically; the columns are the union over rows."""
    columns = ["epoch"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, buf.getvalue())


def _column(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for row in rows:
        value = row.get(key, "")
        if value not in ("", None):
            xs.append(int(float(row["epoch"])))
            ys.append(float(value))
    return xs, ys


def plot_curves(rows: list[dict], path: str | Path, *, class_metric_names: list[str] | None = None) -> None:
    """Loss (training and validation) and per-class IoU against epoch, as a PNG.

    ``class_metric_names`` are the metric names (``iou_<class>``) to draw;
    the validation value is drawn solid, the training value dashed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_iou = fig.subplots(1, 2)
    for key, style in (("loss", "--"), ("val_loss", "-")):
        xs, ys = _column(rows, key)
        if xs:
            ax_loss.plot(xs, ys, style, marker=".", label=key)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("Loss")
    ax_loss.legend(loc="best")
    for i, name in enumerate(class_metric_names or []):
        colour = f"C{i % 10}"
        for key, style in ((name, "--"), (f"val_{name}", "-")):
            xs, ys = _column(rows, key)
            if xs:
                ax_iou.plot(xs, ys, style, color=colour, marker=".", label=key)
    ax_iou.set_ylim(0, 1.02)
    ax_iou.set_xlabel("epoch")
    ax_iou.set_ylabel("IoU")
    ax_iou.set_title("Per-class IoU (solid: validation)")
    if ax_iou.lines:
        ax_iou.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
