"""Simulator settings measured from the user's own detector frames.

``run_fit_ccd`` labels each frame with the threshold labeller
(:func:`detector.thresholds.label_frame`) and measures what the simulator
(:mod:`synthetic.ccd`) needs to make frames like them:

* pedestal (median over the frames) and its drift along the rows, readout
  noise (each frame's sigma, in ADU, divided by the gain);
* glow: how many frames glow, from which edge, its level at the edge and
  how far it reaches; a band of constant level (the profile is still above
  three quarters of the edge level at 60 % of its extent) or an exponential
  decay (decay length = half-level distance / ln 2);
* hot pixels: density and charge of isolated ones; hot column and row
  segments: rate, length, level, and the share of columns that run on to
  the first or last row;
* clusters: count per 256 x 256 pixels and charge, of what stands clearly
  above the noise (fainter clusters are not seen by the labeller, and are
  not needed: the simulator's own range starts low).

Charges are in electrons when the gain (ADU per electron) is given, else in
ADU with a gain of 1. Written (atomically) as JSON with ``settings`` (the
fields of :class:`synthetic.ccd_settings.CCDSettings`, read back by
``simulate-ccd --settings FILE``), ``measured`` (the figures behind them)
and one row per frame.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from core.atomic import write_json_atomic
from core.errors import UserInputError
from core.gray import to_gray
from core.imageio import list_images
from core.photos import PhotoLoop
from core.progress import Progress
from detector.overscan import frame_overscan, overscan_columns
from detector.thresholds import CLUSTER, GLOWING, HOT_PIXEL, label_frame, smooth_background
from synthetic.ccd_settings import CCDSettings

# A frame glows from an edge when at least this share of the edge's first
# EDGE_LINES lines glows.
EDGE_GLOW_SHARE, EDGE_LINES = 0.5, 8
# Band or decay: a band is still at this share of its edge level at
# BAND_POINT of the distance where it falls to half.
BAND_LEVEL, BAND_POINT = 0.75, 0.6
MIN_RUN = 3  # a hot line holds at least this many pixels in a row or column
_EIGHT = np.ones((3, 3), bool)


@dataclass
class FitCCDResult:
    out: Path
    settings: CCDSettings
    measured: dict
    frames: int = 0
    failed: list[str] = field(default_factory=list)
    cancelled: bool = False

    def summary(self) -> str:
        if self.cancelled:
            return "Fitting cancelled: nothing was written."
        m = self.measured
        glow = (f"glow in {m['glow_frames']} of {self.frames} frames ({m['glow_shape']}, from {m['glow_side']})"
                if m["glow_frames"] else "no glow")
        text = (f"Measured {self.frames} frame(s) into {self.out}: pedestal {m['pedestal_adu']:.1f} ADU, "
                f"noise {m['noise_adu'][0]:.2f}-{m['noise_adu'][1]:.2f} ADU, {glow}, "
                f"{m['hot_lines']} hot line(s), {m['clusters']} cluster(s). "
                f"Use it with: simulate-ccd --settings {self.out}")
        if self.failed:
            text += f" {len(self.failed)} frame(s) could not be read or measured."
        return text


def measure_frame(frame: np.ndarray, overscan: slice | None = None) -> dict:
    """What one frame shows (ADU): see the module docstring. With
    ``overscan`` columns, pedestal and noise are theirs, and the rest is
    measured on the active columns only."""
    frame = np.asarray(frame, np.float64)
    over = overscan_columns(frame.shape[1], overscan)
    mask, info = label_frame(frame, pedestal_region=np.s_[:, over] if over.any() else None)
    pedestal, sigma = info.pedestal, info.sigma
    if over.any():
        frame, mask = frame[:, ~over], mask[:, ~over]
    z = (np.nan_to_num(frame, nan=pedestal) - pedestal) / sigma
    level = pedestal + sigma * smooth_background(z.astype(np.float32), 8)  # pedestal and glow
    h, w = mask.shape
    row = {"height": h, "width": w, "pedestal_adu": pedestal, "noise_adu": sigma,
           "max_adu": float(np.nanmax(frame))}
    # Drift of the pedestal along the rows, from the background pixels.
    background = np.where(mask == 0, frame, np.nan)
    with warnings.catch_warnings():  # a row without background pixels is left out
        warnings.simplefilter("ignore", RuntimeWarning)
        rows = np.nanmedian(background, axis=1)
    ok = np.isfinite(rows)
    row["drift_adu"] = float(np.polyfit(np.flatnonzero(ok), rows[ok], 1)[0] * (h - 1)) if ok.sum() > 2 else 0.0
    row.update(_glow(frame - pedestal, mask))
    row.update(_hot(frame - level, mask))
    labels, count = ndi.label(mask == CLUSTER, structure=_EIGHT)
    if count:
        grown = ndi.grey_dilation(labels, footprint=_EIGHT)
        grown[mask == HOT_PIXEL] = 0
        grown[labels > 0] = labels[labels > 0]
        charges = ndi.sum(frame - level, grown, index=np.arange(1, count + 1))
    else:
        charges = np.zeros(0)
    row["clusters"] = int(count)
    row["clusters_per_256"] = count * 256.0**2 / (h * w)
    row["cluster_charges_adu"] = [float(c) for c in charges if c > 0]
    return row


def _glow(signal: np.ndarray, mask: np.ndarray) -> dict:
    glow = mask == GLOWING
    if not glow.any():
        return {"glow": None}
    # The steep first lines of a decaying glow can pass for hot columns:
    # the share is of the pixels not labelled hot.
    counted = (mask != HOT_PIXEL).astype(float)
    def edge_share(lines):
        return glow[lines].sum() / max(counted[lines].sum(), 1.0)
    share = {"left": edge_share(np.s_[:, :EDGE_LINES]), "right": edge_share(np.s_[:, -EDGE_LINES:]),
             "top": edge_share(np.s_[:EDGE_LINES]), "bottom": edge_share(np.s_[-EDGE_LINES:])}
    side = max(share, key=share.get)
    if share[side] < EDGE_GLOW_SHARE:
        return {"glow": None}
    # Distance from the edge along axis 1 (left/right) or 0 (top/bottom). The
    # median over each line of the frame, whatever its labels: a line's few
    # clusters do not move it, and the labeller takes the soft inner border
    # of a band for clusters, which must not cut the band short.
    oriented = signal if side in ("left", "right") else signal.T
    if side in ("right", "bottom"):
        oriented = oriented[:, ::-1]
    profile = np.nan_to_num(np.nanmedian(oriented, axis=0), nan=0.0)
    amplitude = float(np.median(profile[:3]))
    if not amplitude > 0:
        return {"glow": None}
    below = np.flatnonzero(profile < amplitude / 2)
    extent = int(below[0]) if below.size else profile.size
    band = profile[min(int(BAND_POINT * extent), profile.size - 1)] >= BAND_LEVEL * amplitude
    # The band's inner border: pixels from 90 % to 10 % of its level, which
    # for a logistic of scale s is 2 ln 9 s (0 for a hard step).
    high = np.flatnonzero(profile < 0.9 * amplitude)
    low = np.flatnonzero(profile < 0.1 * amplitude)
    edge = float(max(int(low[0]) - int(high[0]), 0)) / (2 * np.log(9.0)) if high.size and low.size else None
    return {"glow": {"side": side, "amplitude_adu": amplitude, "shape": "band" if band else "decay",
                     "extent_px": extent, "side_px": profile.size, "edge_px": edge if band else None,
                     "decay_px": None if band else max(extent, 1) / np.log(2.0)}}


def _hot(signal: np.ndarray, mask: np.ndarray) -> dict:
    hot = mask == HOT_PIXEL
    h, w = hot.shape
    columns, rows = [], []
    in_line = np.zeros_like(hot)
    for structure, found in ((np.array([[0, 1, 0]] * 3, bool), columns), (np.array([[0, 1, 0]] * 3, bool).T, rows)):
        labels, _ = ndi.label(hot, structure=structure)
        for k, box in enumerate(ndi.find_objects(labels), start=1):
            length = (box[0].stop - box[0].start) if found is columns else (box[1].stop - box[1].start)
            if length < MIN_RUN:
                continue
            pixels = labels[box] == k
            in_line[box] |= pixels
            found.append({"length": length, "level_adu": float(np.median(signal[box][pixels])),
                          "first": box[0].start == 0, "last": box[0].stop == h})
    isolated = hot & ~in_line
    return {"hot_pixels": int(isolated.sum()), "hot_pixel_adu": [float(v) for v in signal[isolated]],
            "hot_columns": columns, "hot_rows": rows}


def fit_settings(rows: list[dict], *, gain: float = 1.0) -> tuple[CCDSettings, dict]:
    """Simulator settings from measured frames (:func:`measure_frame` rows)."""
    if not rows:
        raise UserInputError("No frame could be measured.")
    side = int(np.median([min(r["height"], r["width"]) for r in rows]))
    s = CCDSettings()
    s.gain_adu_per_electron = float(gain)
    s.pedestal_adu = float(np.median([r["pedestal_adu"] for r in rows]))
    noise = np.array([r["noise_adu"] for r in rows])
    s.readout_noise_range = (0.95 * noise.min() / gain, 1.05 * noise.max() / gain)
    s.dark_current_range = (0.0, 0.0)  # already in each frame's measured noise
    s.saturation_adu = max(65535.0, float(np.ceil(max(r["max_adu"] for r in rows))))
    drifts = np.abs([r["drift_adu"] for r in rows])
    s.pedestal_drift_adu = float(np.percentile(drifts, 90)) if np.median(drifts) > 0.2 * noise.mean() else 0.0

    glows = [r["glow"] for r in rows if r["glow"]]
    s.glow_probability = len(glows) / len(rows)
    measured = {"frames": len(rows), "pedestal_adu": s.pedestal_adu,
                "noise_adu": [float(noise.min()), float(noise.max())], "gain_adu_per_electron": gain,
                "glow_frames": len(glows), "glow_shape": None, "glow_side": None}
    if glows:
        sides = [g["side"] for g in glows]
        common = max(set(sides), key=sides.count)
        s.glow_side = common if sides.count(common) >= 0.8 * len(sides) else "any"
        amplitudes = np.array([g["amplitude_adu"] for g in glows]) / gain
        s.glow_amplitude_range = (0.9 * amplitudes.min(), 1.1 * amplitudes.max())
        bands = [g for g in glows if g["shape"] == "band"]
        decays = [g for g in glows if g["shape"] == "decay"]
        s.glow_band_share = len(bands) / len(glows)
        if bands:
            widths = np.array([g["extent_px"] / g["side_px"] for g in bands])
            s.glow_band_width_range = (max(0.9 * widths.min(), 1e-3), min(1.1 * widths.max(), 1.0))
            edges = [g["edge_px"] for g in bands if g.get("edge_px") is not None]
            if edges:
                s.glow_band_edge_px = float(np.median(edges))
        if decays:
            lengths = np.array([g["decay_px"] / g["side_px"] for g in decays])
            s.glow_length_range = (max(0.9 * lengths.min(), 1e-3), min(1.1 * lengths.max(), 1.0))
        measured.update(glow_shape="band" if len(bands) >= len(decays) else "decay", glow_side=s.glow_side,
                        glow_amplitude_adu=[float(amplitudes.min() * gain), float(amplitudes.max() * gain)])

    s.hot_pixel_density = float(np.median([r["hot_pixels"] / (r["height"] * r["width"]) for r in rows]))
    hot_values = np.array([v for r in rows for v in r["hot_pixel_adu"] if v > 0]) / gain
    if hot_values.size >= 2:
        s.hot_pixel_charge_range = tuple(float(v) for v in np.percentile(hot_values, [5, 95]))
    columns = [c for r in rows for c in r["hot_columns"]]
    lines = columns + [c for r in rows for c in r["hot_rows"]]
    s.hot_line_rate = float(np.mean([(len(r["hot_columns"]) + len(r["hot_rows"])) * 256.0 / r["width"]
                                     for r in rows]))
    measured["hot_lines"] = len(lines)
    if lines:
        s.hot_line_row_fraction = 1.0 - len(columns) / len(lines)
        fractions = np.array([line["length"] for line in lines]) / side
        s.hot_line_length_range = (float(np.clip(fractions.min(), MIN_RUN / side, 1.0)),
                                   float(np.clip(fractions.max(), MIN_RUN / side, 1.0)))
        levels = np.array([max(line["level_adu"], 1e-3) for line in lines]) / gain
        s.hot_line_charge_range = (float(np.percentile(levels, 5)), float(np.percentile(levels, 95)))
    if columns:
        first = sum(c["first"] for c in columns)
        last = sum(c["last"] for c in columns)
        s.readout_row = "first" if first >= last else "last"
        s.hot_line_to_edge = max(first, last) / len(columns)

    counts = np.array([r["clusters_per_256"] for r in rows])
    s.cluster_count_range = (float(np.percentile(counts, 10)), float(np.percentile(counts, 90)))
    charges = np.array([c for r in rows for c in r["cluster_charges_adu"]]) / gain
    measured["clusters"] = int(sum(r["clusters"] for r in rows))
    if charges.size >= 2:
        lo, hi = np.percentile(charges, [5, 95])
        s.deposit_charge_range = (float(max(lo, 1e-3)), float(max(hi, lo, 1e-3)))
    s = _rounded(s)
    s.validate()
    return s, measured


def _rounded(settings: CCDSettings) -> CCDSettings:
    """Measured values to 4 significant digits, as a person would write them."""
    def four(value):
        if isinstance(value, float):
            return float(f"{value:.4g}")
        if isinstance(value, tuple):
            return tuple(four(v) for v in value)
        return value
    return CCDSettings(**{name: four(value) for name, value in asdict(settings).items()})


def run_fit_ccd(frames: str | Path, out: str | Path, *, gain: float | None = None,
                overscan: slice | None = None, hdu: int | None = None,
                progress: Progress | None = None) -> FitCCDResult:
    """Measure the frames of ``frames`` (folder or file) and write the
    simulator settings to ``out`` (a JSON file); ``overscan`` columns give
    the pedestal and the readout noise (see :func:`measure_frame`).
    ``out`` may not be one of the frames nor lie in the frames folder."""
    from core.overlap import output_path, refuse_overlap

    progress = progress if progress is not None else Progress()
    gain = 1.0 if gain is None else float(gain)
    if not (gain > 0 and np.isfinite(gain)):
        raise UserInputError(f"The gain must be a positive number of ADU per electron, not {gain}")
    files = list_images(frames, what="frames folder", hdu=hdu)
    out = output_path(out, output_kind="the settings file")
    if out.is_dir():
        raise UserInputError(f"The settings file is a folder: {out}")
    refuse_overlap(out, [frames, *files], output_kind="the settings file", input_kind="the frames",
                   remedy="write it outside the frames folder")
    measured_rows, names = [], []
    loop = PhotoLoop(files, progress, doing="measuring")
    for _, path, image in loop:
        try:
            row = measure_frame(to_gray(image), frame_overscan(path, overscan))
        except UserInputError as exc:
            progress.log(f"skipped: {path.name}: {exc}")
            loop.skipped.append(path.name)
            continue
        measured_rows.append(row)
        names.append(path.name)
    result = FitCCDResult(out, CCDSettings(), {}, len(measured_rows), list(loop.skipped))
    if loop.cancelled:
        result.cancelled = True
        return result
    if not measured_rows:
        raise UserInputError(f"None of the {len(files)} frame(s) could be measured.")
    result.settings, result.measured = fit_settings(measured_rows, gain=gain)
    frames_table = [{"file": name, **{k: v for k, v in row.items()
                                       if k not in ("cluster_charges_adu", "hot_pixel_adu")}}
                    for name, row in zip(names, measured_rows)]
    try:
        write_json_atomic(out, {"what": "CCD simulator settings measured from detector frames",
                                "settings": asdict(result.settings), "measured": result.measured,
                                "frames": frames_table})
    except OSError as exc:
        raise UserInputError(f"Cannot write {out}: {exc.strerror or exc}") from None
    return result
