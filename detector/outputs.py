"""What a detector physicist takes out of a segmented CCD frame.

For a model with the detector classes (background, glowing, hot pixel,
cluster), :class:`DetectorCollector` writes beside the usual measurements::

    <stem>_clusters.csv   one row per cluster (8-connected cluster pixels)
    <stem>_hotmask.fits   hot pixels and hot columns as a 0/1 mask (uint8)
    quality.csv           one row per frame: pedestal, noise, glow, hot, clusters
    hot_columns.csv       each column hot in at least one frame, and in how many

Charges are in ADU above the local background: the sum over each cluster's
pixels and a one-pixel halo around them (the diffusion tails below the
labelling threshold; without it charges came out 5 % low) of the pixel minus
the median of the frame around it (a ring 2 to 4 pixels out, hot and cluster
pixels left out), so a cluster inside a glow band is not credited with the
glow. With the gain known (ADU per electron) they are given in electrons too.
Measured against the simulator's truth: ``benchmarks/bench_cluster_catalogue.py``.

Shapes, from the second moments of the cluster's pixels (length and width
are the major and minor axis lengths, four standard deviations, as ImageJ
and scikit-image give them):

* ``muon``: long and straight (length at least ``MUON_LENGTH`` pixels and
  width at most ``MUON_WIDTH_SHARE`` of it), a minimum-ionising particle
  crossing the sensor;
* ``track``: elongated (length at least ``TRACK_ELONGATION`` times the width
  and at least ``TRACK_LENGTH`` pixels), an electron's worm-like track;
* ``blob``: everything else, a diffusion-limited point deposit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from core.atomic import atomic_path
from core.model_folder import DETECTOR_CLASSES, is_detector_model
from measurement.exports import plain, write_csv

__all__ = ["DETECTOR_CLASSES", "is_detector_model", "DetectorCollector", "frame_clusters", "frame_quality",
           "hot_columns", "hot_mask", "write_hot_mask"]

GLOWING, HOT, CLUSTER = 1, 2, 3

MUON_LENGTH = 20.0
MUON_WIDTH_SHARE = 0.2
TRACK_ELONGATION = 2.0
TRACK_LENGTH = 5.0
# A column is hot when it holds a vertical run of at least this many hot
# pixels (a single hot pixel is not a hot column).
HOT_COLUMN_RUN = 3
# A column belongs to the glow band when at least this share of it glows.
GLOW_COLUMN_SHARE = 0.5
_EIGHT = np.ones((3, 3), bool)

CLUSTER_COLUMNS = ["cluster_id", "x", "y", "x_min", "y_min", "x_max", "y_max", "pixels", "charge_adu",
                   "charge_e", "peak_adu", "peak_x", "peak_y", "length_px", "width_px", "shape",
                   "touches_hot", "touches_glow", "at_edge"]
QUALITY_COLUMNS = ["image", "width_px", "height_px", "pedestal_adu", "noise_adu", "glow_columns",
                   "glow_fraction", "hot_pixels", "hot_columns", "clusters", "total_charge_adu",
                   "total_charge_e"]
HOT_COLUMN_COLUMNS = ["column", "frames_hot", "frames", "share"]


def hot_columns(class_mask: np.ndarray) -> np.ndarray:
    """Indices of the columns holding a vertical run of at least
    ``HOT_COLUMN_RUN`` hot pixels."""
    hot = np.asarray(class_mask) == HOT
    if hot.shape[0] < HOT_COLUMN_RUN:
        return np.zeros(0, int)
    run = ndi.binary_erosion(hot, structure=np.ones((HOT_COLUMN_RUN, 1), bool), border_value=0)
    return np.flatnonzero(run.any(axis=0))


def hot_mask(class_mask: np.ndarray) -> np.ndarray:
    """0/1 mask of the hot pixels, with every hot column masked over its
    whole height (a column that leaks charge is bad below and above the
    pixels that showed it in this frame)."""
    mask = (np.asarray(class_mask) == HOT).astype(np.uint8)
    mask[:, hot_columns(class_mask)] = 1
    return mask


def _shape(length: float, width: float) -> str:
    if length >= MUON_LENGTH and width <= MUON_WIDTH_SHARE * length:
        return "muon"
    if length >= TRACK_LENGTH and length >= TRACK_ELONGATION * max(width, 1e-9):
        return "track"
    return "blob"


def _axes(ys: np.ndarray, xs: np.ndarray) -> tuple[float, float]:
    """Major and minor axis lengths (4 standard deviations) of a pixel set;
    a pixel counts as a unit square (variance 1/12 added)."""
    if ys.size == 1:
        return 1.0, 1.0
    cov = np.cov(np.stack([xs, ys]).astype(np.float64), bias=True) + np.eye(2) / 12.0
    minor, major = np.sqrt(np.clip(np.linalg.eigvalsh(cov), 0.0, None))
    return 4.0 * float(major), 4.0 * float(minor)


def frame_clusters(frame: np.ndarray, class_mask: np.ndarray, *, pedestal: float,
                   gain: float | None = None) -> list[dict]:
    """One row per cluster of a frame (columns :data:`CLUSTER_COLUMNS`)."""
    frame = np.asarray(frame, np.float64)
    if frame.ndim == 3:
        frame = frame.mean(axis=-1)
    class_mask = np.asarray(class_mask)
    labels, count = ndi.label(class_mask == CLUSTER, structure=_EIGHT)
    if count == 0:
        return []
    hot = class_mask == HOT
    glow = class_mask == GLOWING
    quiet = (class_mask == 0) | glow
    height, width = class_mask.shape
    rows = []
    for k, box in enumerate(ndi.find_objects(labels), start=1):
        pad = tuple(slice(max(s.start - 4, 0), min(s.stop + 4, n)) for s, n in zip(box, (height, width)))
        own = labels[pad] == k
        near = ndi.binary_dilation(own, _EIGHT, iterations=1)
        ring = ndi.binary_dilation(own, _EIGHT, iterations=4) & ~ndi.binary_dilation(own, _EIGHT, iterations=1)
        ring &= quiet[pad]
        values = frame[pad]
        level = float(np.median(values[ring])) if ring.sum() >= 8 else pedestal
        ys, xs = np.nonzero(own)
        signal = values[own] - level
        halo = near & ~own & quiet[pad] & (labels[pad] == 0)
        charge = float(signal.sum() + (values[halo] - level).sum())
        weights = np.clip(signal, 0.0, None)
        if weights.sum() > 0:
            cy, cx = np.average(ys, weights=weights), np.average(xs, weights=weights)
        else:
            cy, cx = ys.mean(), xs.mean()
        peak = int(np.argmax(signal))
        length, width_px = _axes(ys, xs)
        y0, x0 = pad[0].start, pad[1].start
        rows.append({
            "cluster_id": k, "x": x0 + cx, "y": y0 + cy,
            "x_min": x0 + int(xs.min()), "y_min": y0 + int(ys.min()),
            "x_max": x0 + int(xs.max()), "y_max": y0 + int(ys.max()),
            "pixels": int(ys.size), "charge_adu": charge,
            "charge_e": charge / gain if gain else None,
            "peak_adu": float(signal[peak]), "peak_x": x0 + int(xs[peak]), "peak_y": y0 + int(ys[peak]),
            "length_px": length, "width_px": width_px, "shape": _shape(length, width_px),
            "touches_hot": int((near & hot[pad]).any()), "touches_glow": int((near & glow[pad]).any()),
            "at_edge": int(box[0].start == 0 or box[1].start == 0 or box[0].stop == height
                           or box[1].stop == width),
        })
    return rows


def frame_quality(name: str, frame: np.ndarray, class_mask: np.ndarray, clusters: list[dict], *,
                  pedestal: float, noise: float, gain: float | None = None) -> dict:
    """One row of ``quality.csv`` (columns :data:`QUALITY_COLUMNS`)."""
    class_mask = np.asarray(class_mask)
    glow = class_mask == GLOWING
    total = float(sum(c["charge_adu"] for c in clusters))
    return {
        "image": name, "width_px": class_mask.shape[1], "height_px": class_mask.shape[0],
        "pedestal_adu": pedestal, "noise_adu": noise,
        "glow_columns": int((glow.mean(axis=0) >= GLOW_COLUMN_SHARE).sum()),
        "glow_fraction": float(glow.mean()),
        "hot_pixels": int((class_mask == HOT).sum()), "hot_columns": int(hot_columns(class_mask).size),
        "clusters": len(clusters), "total_charge_adu": total,
        "total_charge_e": total / gain if gain else None,
    }


def write_hot_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """The hot mask as a FITS image (uint8, 1 = hot), written atomically."""
    from astropy.io import fits

    hdu = fits.PrimaryHDU(np.ascontiguousarray(mask, np.uint8))
    hdu.header["COMMENT"] = "1 = hot pixel or hot column, 0 = good"
    with atomic_path(path) as tmp:
        hdu.writeto(tmp, overwrite=True)
    return Path(path)


@dataclass
class DetectorCollector:
    """Writes each frame's catalogue and hot mask, and the folder's
    quality table and hot-column list at :meth:`finish`."""

    out_dir: Path
    gain: float | None = None
    overscan: slice | None = None  # columns that give the pedestal and noise
    quality: list[dict] = field(default_factory=list)
    _column_hits: dict[int, int] = field(default_factory=dict)

    def add(self, stem: str, frame: np.ndarray, class_mask: np.ndarray, *,
            image_name: str | None = None) -> list[dict]:
        record = self.measure(self.out_dir, stem, frame, class_mask, image_name=image_name)
        self.add_record(record)
        return record["clusters"]

    def measure(self, out_dir: str | os.PathLike, stem: str, frame: np.ndarray, class_mask: np.ndarray, *,
                image_name: str | None = None) -> dict:
        """Write one frame's catalogue and hot mask into ``out_dir``; returns
        what the folder's tables need of it (plain JSON-ready data, see
        :meth:`add_record`) and its clusters."""
        from detector.overscan import overscan_columns
        from detector.thresholds import robust_level

        frame = np.asarray(frame, np.float64)
        gray = frame.mean(axis=-1) if frame.ndim == 3 else frame
        over = overscan_columns(gray.shape[1], self.overscan)
        background = np.asarray(class_mask) == 0
        if over.any():
            region = np.s_[:, over]
        else:
            region = background if background.sum() >= 16 else None
        pedestal, noise = robust_level(gray, region)
        clusters = frame_clusters(gray, class_mask, pedestal=pedestal, gain=self.gain)
        write_csv(Path(out_dir) / f"{stem}_clusters.csv", clusters, CLUSTER_COLUMNS)
        write_hot_mask(Path(out_dir) / f"{stem}_hotmask.fits", hot_mask(class_mask))
        quality = frame_quality(image_name or stem, gray, class_mask, clusters,
                                pedestal=pedestal, noise=noise, gain=self.gain)
        return {"quality": plain(quality), "hot_columns": [int(c) for c in hot_columns(class_mask)],
                "clusters": clusters}

    def add_record(self, record: dict) -> None:
        """Add a frame measured by :meth:`measure` to the folder's tables."""
        self.quality.append(record["quality"])
        for column in record["hot_columns"]:
            self._column_hits[int(column)] = self._column_hits.get(int(column), 0) + 1

    def finish(self) -> dict[str, Path]:
        out = Path(self.out_dir)
        frames = len(self.quality)
        columns = [{"column": c, "frames_hot": n, "frames": frames, "share": n / frames if frames else 0.0}
                   for c, n in sorted(self._column_hits.items())]
        return {"quality": write_csv(out / "quality.csv", self.quality, QUALITY_COLUMNS),
                "hot_columns": write_csv(out / "hot_columns.csv", columns, HOT_COLUMN_COLUMNS)}
