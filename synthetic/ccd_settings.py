"""Settings of the CCD detector simulator (:mod:`synthetic.ccd`) and
their checks: every knob has a physical meaning and a unit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import UserInputError

MIN_SIZE, MAX_SIZE, MAX_COUNT = 16, 8192, 100_000
GLOW_SIDES = ("any", "left", "right", "top", "bottom")


@dataclass
class CCDSettings:
    """What to simulate. Charges are in electrons (e-), frame values in ADU.

    Ranges ``(lo, hi)`` are drawn per frame or per object: uniformly for
    fractions and noise, evenly in log scale for charges (they span decades).
    Rates quoted "per 256 x 256" scale with the frame area (or side, for
    lines), so a larger frame sees the same exposure per pixel.
    """

    count: int = 200
    """Number of frames to write."""
    size: int = 256
    """Frame side in pixels (square frames)."""
    seed: int = 0
    """Random seed: same seed, same frames, byte for byte."""

    pedestal_adu: float = 1000.0
    """Baseline level of the output amplifier, in ADU."""
    gain_adu_per_electron: float = 1.0
    """Conversion gain of the readout chain."""
    readout_noise_range: tuple[float, float] = (2.0, 8.0)
    """Gaussian readout noise sigma in e-, drawn per frame (it varies with
    temperature and readout speed)."""
    dark_current_range: tuple[float, float] = (0.05, 1.0)
    """Mean dark charge per pixel and frame in e- (Poisson), drawn per frame."""
    saturation_adu: float = 65535.0
    """Digitiser ceiling (16-bit)."""

    glow_probability: float = 0.35
    """Fraction of frames with amplifier glow."""
    glow_amplitude_range: tuple[float, float] = (10.0, 200.0)
    """Glow charge per pixel at the glowing edge or corner, e-."""
    glow_length_range: tuple[float, float] = (0.05, 0.3)
    """Exponential decay length of the glow, as a fraction of the frame side."""
    glow_band_share: float = 0.0
    """Share of the glowing frames whose glow is a band of constant level
    along one edge (as some amplifiers show) instead of an exponential decay."""
    glow_band_width_range: tuple[float, float] = (0.1, 0.25)
    """Width of a glow band, as a fraction of the frame side."""
    glow_band_edge_px: float = 0.5
    """Softness of a glow band's inner border in pixels (the scale of its
    logistic fall; 0 for a hard step from one column to the next)."""
    glow_side: str = "any"
    """Where the glow comes from: "any" (an edge or a corner, drawn per
    frame) or always one edge: "left", "right", "top" (the first row) or
    "bottom"."""
    pedestal_drift_adu: float = 0.0
    """The pedestal drifts linearly from the first row to the last by up to
    this many ADU (either sign, drawn per frame)."""

    hot_pixel_density: float = 1.5e-4
    """Isolated hot pixels per pixel (Poisson)."""
    hot_pixel_charge_range: tuple[float, float] = (40.0, 4000.0)
    """Charge of an isolated hot pixel, e-."""
    hot_line_rate: float = 3.0
    """Expected hot column/row segments per 256 columns (Poisson)."""
    hot_line_row_fraction: float = 0.25
    """Fraction of hot segments that run along a row instead of a column."""
    hot_line_length_range: tuple[float, float] = (0.05, 1.0)
    """Length of a hot segment as a fraction of the frame side (at least 3 px)."""
    hot_line_charge_range: tuple[float, float] = (20.0, 400.0)
    """Charge per pixel of a hot segment, e-."""
    hot_line_to_edge: float = 0.0
    """Share of the hot column segments that run on to the readout row (a
    charge trap leaks into every pixel clocked past it)."""
    readout_row: str = "first"
    """The row next to the serial register: "first" (row 0, FITS y = 1) or "last"."""

    cluster_count_range: tuple[float, float] = (5.0, 40.0)
    """Mean number of particle events per 256 x 256 frame, drawn per frame
    (the count itself is Poisson)."""
    cluster_mix: tuple[float, float, float] = (0.67, 0.30, 0.03)
    """Relative proportions of point deposits, worms and muons."""
    deposit_charge_range: tuple[float, float] = (60.0, 6000.0)
    """Total charge of a point deposit, e- (about 0.2 to 22 keV in silicon)."""
    diffusion_sigma_range: tuple[float, float] = (0.5, 1.6)
    """Diffusion width in pixels of charge freed at the front and at the back
    of the sensor."""
    worm_steps_range: tuple[int, int] = (6, 40)
    """Number of 0.7-pixel steps of an electron track."""
    worm_charge_per_step_range: tuple[float, float] = (40.0, 200.0)
    """Mean charge deposited per step of an electron track, e-."""
    muon_charge_per_pixel_range: tuple[float, float] = (150.0, 1200.0)
    """Charge per pixel of projected muon track length, e-."""
    muon_length_range: tuple[float, float] = (0.1, 0.8)
    """Projected muon track length as a fraction of the frame side."""

    label_snr: float = 1.0
    """k: a pixel carries a class only where that class's noise-free signal
    is at least k times the local noise sigma."""
    detect_snr: float = 6.0
    """An object is labelled only if its matched-filter signal-to-noise
    ratio reaches this value; fainter ones stay background."""

    def validate(self) -> None:
        """Raise :class:`UserInputError` naming the first unusable setting."""
        _check_int("number of frames (count)", self.count, 1, MAX_COUNT)
        _check_int("frame size", self.size, MIN_SIZE, MAX_SIZE, unit=" pixels")
        if not isinstance(self.seed, (int, np.integer)) or abs(int(self.seed)) >= 2**63:
            raise UserInputError(f"The seed must be a whole number below 2**63, got {self.seed!r}.")
        _check_number("pedestal_adu", self.pedestal_adu, 0.0)
        _check_number("gain_adu_per_electron", self.gain_adu_per_electron, 1e-6)
        if not self.saturation_adu > self.pedestal_adu:
            raise UserInputError("saturation_adu must be above pedestal_adu.")
        for name in ("glow_probability", "hot_line_row_fraction", "glow_band_share", "hot_line_to_edge"):
            _check_number(name, getattr(self, name), 0.0, 1.0)
        _check_number("hot_pixel_density", self.hot_pixel_density, 0.0, 0.1)
        _check_number("hot_line_rate", self.hot_line_rate, 0.0, 1000.0)
        positive_ranges = ("readout_noise_range", "glow_amplitude_range", "glow_length_range",
                           "hot_pixel_charge_range", "hot_line_length_range", "hot_line_charge_range",
                           "deposit_charge_range", "diffusion_sigma_range",
                           "worm_charge_per_step_range", "muon_charge_per_pixel_range",
                           "muon_length_range")
        for name in positive_ranges:
            _check_range(name, getattr(self, name), 1e-6)
        _check_range("dark_current_range", self.dark_current_range, 0.0)
        _check_range("glow_band_width_range", self.glow_band_width_range, 1e-6, 1.0)
        _check_number("pedestal_drift_adu", self.pedestal_drift_adu, 0.0)
        _check_number("glow_band_edge_px", self.glow_band_edge_px, 0.0, 100.0)
        if self.glow_side not in GLOW_SIDES:
            raise UserInputError(f"Setting glow_side must be one of {', '.join(GLOW_SIDES)}, got {self.glow_side!r}.")
        if self.readout_row not in ("first", "last"):
            raise UserInputError(f"Setting readout_row must be 'first' or 'last', got {self.readout_row!r}.")
        _check_range("cluster_count_range", self.cluster_count_range, 0.0, 10_000.0)
        _check_range("worm_steps_range", self.worm_steps_range, 1, 10_000)
        for name in ("hot_line_length_range", "glow_length_range", "muon_length_range"):
            _check_range(name, getattr(self, name), 1e-6, 1.0)
        mix = self.cluster_mix
        numbers = isinstance(mix, (list, tuple)) and all(
            isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in mix)
        if (not numbers or len(mix) != 3 or not all(np.isfinite(v) and v >= 0 for v in mix) or not sum(mix) > 0):
            raise UserInputError("Setting cluster_mix must be three numbers, proportions of deposits, worms and "
                                 f"muons, not negative and not all zero, got {mix!r}.")
        _check_number("label_snr", self.label_snr, 1e-6, 1000.0)
        _check_number("detect_snr", self.detect_snr, 0.0, 1000.0)


def _check_int(name: str, value, lo: int, hi: int, unit: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UserInputError(f"The {name} must be a whole number, got {value!r}.")
    if not lo <= value <= hi:
        raise UserInputError(f"The {name} must be between {lo} and {hi}{unit}, got {value}.")


def _check_number(name: str, value, lo: float, hi: float = float("inf")) -> None:
    if not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or not lo <= value <= hi:
        bound = f"at least {lo}" if hi == float("inf") else f"between {lo} and {hi}"
        raise UserInputError(f"Setting {name} must be a number {bound}, got {value!r}.")


def _check_range(name: str, value, lo: float, hi: float = float("inf")) -> None:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise UserInputError(f"Setting {name} must be a pair (low, high), got {value!r}.") from None
    if not (np.isfinite(a) and np.isfinite(b) and lo <= a <= b <= hi):
        raise UserInputError(f"Setting {name} must be a pair low <= high within [{lo}, {hi}], got {value!r}.")


def load_ccd_settings(path) -> CCDSettings:
    """Settings from a JSON file: the ``settings`` of a file written by
    ``fit-ccd`` (or of a ``simulation.json``), or a plain object of
    :class:`CCDSettings` fields. Fields not given keep their defaults; an
    unknown field or a bad value is refused naming it."""
    import dataclasses
    from pathlib import Path

    from core.jsonfile import read_json

    path = Path(path)
    data = read_json(path, what="settings file")
    if isinstance(data, dict) and isinstance(data.get("settings"), dict):
        data = data["settings"]
    if not isinstance(data, dict):
        raise UserInputError(f"{path} holds no CCD simulator settings (a JSON object of settings).")
    known = {f.name: f for f in dataclasses.fields(CCDSettings)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UserInputError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    values = {}
    for name, value in data.items():
        default = getattr(CCDSettings, name, None)
        if isinstance(default, tuple):
            if not isinstance(value, list | tuple):
                raise UserInputError(f"{path}: setting {name} must be a pair (low, high), got {value!r}.")
            value = tuple(value)
        values[name] = value
    settings = CCDSettings(**values)
    settings.validate()
    return settings
