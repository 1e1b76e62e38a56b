"""CCD detector frames with exact per-pixel class labels, for training a
segmentation model that must find faint particle clusters among noise,
amplifier glow and hot pixels.

A frame is built from noise-free signal layers, in electrons:

* dark current, uniform over the frame (Poisson, rate drawn per frame);
* amplifier glow: on some frames a smooth excess decaying exponentially from
  one edge or corner (random side, strength and decay length), or a band of
  constant level along one edge (``glow_band_share``);
* hot pixels: isolated single pixels, and hot column and row segments of
  varying length and intensity, anywhere in the frame (a share of the
  columns running on to the readout row, ``hot_line_to_edge``);
* clusters: diffusion-limited point deposits (2-D Gaussians whose width grows
  with the depth of the interaction), electron tracks (random-walk "worms")
  and straight muon tracks that widen from the front to the back of the sensor;

then shot noise (Poisson on the total charge), Gaussian readout noise (its
sigma drawn per frame), gain and pedestal are applied and the result is
digitised to whole ADU (``frame = pedestal + gain * (charge + readout)``).

Labels (0 background, 1 glowing, 2 hot pixel, 3 cluster) come from the
noise-free layers, never from the noisy frame. With ``sigma`` the local noise
of the frame in electrons, ``sqrt(readout_sigma**2 + dark + glow)``, and
``k = label_snr`` (default 1):

1. An object (one deposit, worm, muon, hot pixel or hot line) is *seen* when
   its matched-filter signal-to-noise ratio ``sqrt(sum((s / sigma)**2))``
   over its pixels reaches ``detect_snr`` (default 6). Fainter objects are
   in the frame, but no method can tell them from noise, so they stay
   background (or glowing) in the mask.
2. A pixel is labelled hot pixel or cluster where the signal of that class
   from seen objects is at least ``k * sigma``; where both are, the larger
   signal wins.
3. Compact signals override glow wherever they pass rule 2 themselves (a
   cluster on a glowing corner is still a cluster); elsewhere a pixel is
   glowing where the glow signal is at least ``k * sigma``.
4. Every other pixel is background.

So a labelled cluster pixel always carries at least ``k`` sigma of its own
signal, within an object that is clearly visible as a whole.

Files written by :func:`run_simulate_ccd` (frame and mask share a stem, so
training and evaluation pair them by name):

* ``<out>/images/ccd_00000.tif``: the frame, float32 ADU, one page;
* ``<out>/masks/ccd_00000.png``: its uint8 class-index mask;
* ``<out>/simulation.json``: settings, class names, measured class pixel
  fractions and each frame's drawn conditions.

Frame ``i`` of a seed is the same whatever ``count`` is: each frame draws
from its own generator seeded by ``(seed, i)``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.atomic import write_json_atomic
from core.errors import UserInputError
from core.imageio import write_image
from core.model_folder import DETECTOR_CLASSES
from core.progress import Progress
from synthetic import ccd_physics as phys
from synthetic.ccd_settings import CCDSettings

CLASS_NAMES = DETECTOR_CLASSES
BACKGROUND, GLOWING, HOT_PIXEL, CLUSTER = 0, 1, 2, 3
_SALT = 0xCCD  # keeps these streams apart from other generators fed the same seed


@dataclass
class CCDFrame:
    """One simulated frame with everything it was made of.

    ``frame`` is float32 ADU and ``mask`` uint8 class indices; the other
    arrays are float32 electrons: the noise-free ``glow``, ``hot`` and
    ``cluster`` layers (all objects), ``hot_seen`` and ``cluster_seen``
    (objects passing ``detect_snr``, the ones labels come from) and
    ``noise``, the local noise sigma.
    """

    frame: np.ndarray
    mask: np.ndarray
    glow: np.ndarray
    hot: np.ndarray
    hot_seen: np.ndarray
    cluster: np.ndarray
    cluster_seen: np.ndarray
    noise: np.ndarray
    info: dict = field(default_factory=dict)


def frame_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of frame ``index``: independent of how many frames are made."""
    return np.random.default_rng([int(seed) % 2**64, int(index), _SALT])


def render_frame(rng: np.random.Generator, settings: CCDSettings | None = None) -> CCDFrame:
    """Simulate one frame and keep its noise-free layers (see the module
    docstring for the physics and the labelling rule)."""
    s = settings if settings is not None else CCDSettings()
    s.validate()
    n = s.size
    sigma_read = float(rng.uniform(*s.readout_noise_range))
    dark = float(rng.uniform(*s.dark_current_range))
    info: dict = {"readout_noise_e": round(sigma_read, 3), "dark_current_e": round(dark, 4), "glow": None}

    glow = np.zeros((n, n), np.float32)
    if rng.random() < s.glow_probability:
        amplitude = float(phys.log_uniform(rng, *s.glow_amplitude_range))
        if s.glow_band_share > 0 and rng.random() < s.glow_band_share:
            width = float(rng.uniform(*s.glow_band_width_range) * n)
            glow, origin = phys.glow_band(rng, n, amplitude, width, s.glow_side, s.glow_band_edge_px)
            info["glow"] = {"from": origin, "amplitude_e": round(amplitude, 2), "band_px": round(width, 2)}
        else:
            length = float(rng.uniform(*s.glow_length_range) * n)
            glow, origin = phys.glow_layer(rng, n, amplitude, length, s.glow_side)
            info["glow"] = {"from": origin, "amplitude_e": round(amplitude, 2), "length_px": round(length, 2)}
        glow = glow.astype(np.float32, copy=False)
    noise = np.sqrt(np.float32(sigma_read**2 + dark) + glow)
    noise_flat = noise.reshape(-1)

    hot = np.zeros(n * n, np.float32)
    hot_seen = np.zeros(n * n, np.float32)
    flat, charge = phys.hot_pixels(rng, n, s.hot_pixel_density, s.hot_pixel_charge_range)
    np.add.at(hot, flat, charge)
    seen = charge / noise_flat[flat] >= s.detect_snr
    np.add.at(hot_seen, flat[seen], charge[seen])
    info["hot_pixels"] = [int(flat.size), int(seen.sum())]
    lines = phys.hot_lines(rng, n, s)
    n_seen = 0
    for flat, charge in lines:
        hot[flat] += charge
        if np.sqrt(np.sum((charge / noise_flat[flat]) ** 2)) >= s.detect_snr:
            hot_seen[flat] += charge
            n_seen += 1
    info["hot_lines"] = [len(lines), n_seen]
    hot, hot_seen = hot.reshape(n, n), hot_seen.reshape(n, n)

    cluster = np.zeros((n, n), np.float32)
    cluster_seen = np.zeros((n, n), np.float32)
    rate = rng.uniform(*s.cluster_count_range) * (n * n) / 256.0**2
    mix = np.asarray(s.cluster_mix, float)
    kinds = rng.choice(3, size=rng.poisson(rate), p=mix / mix.sum())
    counts = [[0, 0] for _ in phys.CLUSTER_KINDS]
    for kind in kinds:
        patch = phys.CLUSTER_KINDS[kind](rng, n, s)
        if patch is None:
            continue
        window = patch.window
        cluster[window] += patch.charge
        counts[kind][0] += 1
        if np.sqrt(np.sum((patch.charge / noise[window]) ** 2)) >= s.detect_snr:
            cluster_seen[window] += patch.charge
            counts[kind][1] += 1
    info["clusters"] = dict(zip(phys.CLUSTER_KIND_NAMES, counts))

    expected = (dark + glow + hot + cluster).astype(np.float64)
    charge = rng.poisson(expected).astype(np.float32)
    charge += rng.standard_normal((n, n), dtype=np.float32) * np.float32(sigma_read)
    frame = np.float32(s.pedestal_adu) + np.float32(s.gain_adu_per_electron) * charge
    if s.pedestal_drift_adu > 0:
        drift = float(rng.uniform(-s.pedestal_drift_adu, s.pedestal_drift_adu))
        frame += (drift * np.linspace(0.0, 1.0, n, dtype=np.float32))[:, None]
        info["pedestal_drift_adu"] = round(drift, 2)
    np.rint(frame, out=frame)  # the digitiser gives whole ADU
    np.clip(frame, 0.0, s.saturation_adu, out=frame)

    mask = label_layers(glow, hot_seen, cluster_seen, noise, s.label_snr)
    return CCDFrame(frame, mask, glow, hot, hot_seen, cluster, cluster_seen, noise, info)


def label_layers(glow, hot_seen, cluster_seen, noise, k: float) -> np.ndarray:
    """The class-index mask from noise-free layers: see rules 2-4 of the
    module docstring."""
    threshold = np.float32(k) * noise
    hot_signal = np.where(hot_seen >= threshold, hot_seen, 0)
    cluster_signal = np.where(cluster_seen >= threshold, cluster_seen, 0)
    mask = np.where(glow >= threshold, np.uint8(GLOWING), np.uint8(BACKGROUND))
    mask[hot_signal > 0] = HOT_PIXEL
    mask[cluster_signal > hot_signal] = CLUSTER
    return mask


def simulate_frame(rng: np.random.Generator, settings: CCDSettings | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One simulated frame and its exact mask.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (see :func:`frame_rng` for per-frame seeding).
    settings : CCDSettings, optional
        Physics and labelling knobs; ``settings.size`` is the frame side.

    Returns
    -------
    frame : ndarray of float32, shape (size, size)
        Digitised pixel values in ADU.
    mask : ndarray of uint8, shape (size, size)
        Class index per pixel: 0 background, 1 glowing, 2 hot pixel, 3 cluster.
    """
    result = render_frame(rng, settings)
    return result.frame, result.mask


@dataclass
class CCDResult:
    """What :func:`run_simulate_ccd` wrote."""

    out: Path
    count: int
    size: int
    seed: int
    written: int
    class_fractions: dict[str, float]
    seconds: float
    cancelled: bool = False

    def summary(self) -> str:
        if self.cancelled:
            return (f"Simulation cancelled after {self.written} of {self.count} CCD frames: none was kept, "
                    f"{self.out} is as it was.")
        fractions = ", ".join(f"{name} {100 * value:.2f} %" for name, value in self.class_fractions.items())
        head = f"Simulated {self.written} CCD frames"
        return (f"{head} of {self.size} x {self.size} pixels (seed {self.seed}) in {self.seconds:.1f} s: "
                f"frames in {self.out / 'images'} (float32 TIFF, ADU), exact class masks in "
                f"{self.out / 'masks'} (uint8 PNG, same file names). Class pixel fractions: {fractions}.")


def frame_stem(index: int) -> str:
    """File stem of frame ``index`` (shared by its image and its mask)."""
    return f"ccd_{index:05d}"


def _check_output(out: Path, settings: CCDSettings) -> None:
    if out.exists() and not out.is_dir():
        raise UserInputError(f"The output folder is an existing file, not a folder: {out}")
    for sub in ("images", "masks"):
        if (out / sub).exists() and not (out / sub).is_dir():
            raise UserInputError(f"The output folder holds a file where a folder is needed: {out / sub}")
    existing = next((p for p in [out, *out.parents] if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise UserInputError(f"The output folder cannot be created: {out}")
    # An upper bound: float32 frames and uint8 masks, before compression.
    needed = settings.count * settings.size**2 * 5
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise UserInputError(f"Not enough free disk space for {settings.count} frames of {settings.size} "
                             f"pixels (up to {needed / 1e9:.1f} GB, {free / 1e9:.1f} GB free) in {out}")


def _earlier_frames(out: Path) -> set[str]:
    """The stems of the frames an earlier simulation wrote into ``out``, as
    its ``simulation.json`` lists them (none when it holds no such file)."""
    from core.jsonfile import read_json_object

    try:
        earlier = read_json_object(out / "simulation.json", what="simulation description")
    except UserInputError:
        return set()
    frames = earlier.get("frames")
    return {f["file"] for f in frames if isinstance(f, dict) and isinstance(f.get("file"), str)} \
        if isinstance(frames, list) else set()


def _check_frames_to_replace(out: Path, settings: CCDSettings) -> set[str]:
    """The earlier simulation's frames in ``out`` (replaced or removed by
    this one); refuses when a frame file of this run's names is there that
    no simulation wrote (a user's own file is never overwritten)."""
    earlier = _earlier_frames(out)
    for index in range(settings.count):
        stem = frame_stem(index)
        for path in (out / "images" / f"{stem}.tif", out / "masks" / f"{stem}.png"):
            if (path.exists() or path.is_symlink()) and stem not in earlier:
                raise UserInputError(f"{path} is there already and no simulation wrote it (it is not in "
                                     f"{out / 'simulation.json'}): choose an empty or new output folder, "
                                     "so that it is not overwritten")
    return earlier


def run_simulate_ccd(out: str | Path, *, settings: CCDSettings | None = None,
                     progress: Progress | None = None) -> CCDResult:
    """Simulate ``settings.count`` CCD frames with exact masks into ``out``.

    Writes ``out/images/<stem>.tif`` (float32 ADU), ``out/masks/<stem>.png``
    (uint8 class index) with ``<stem> = ccd_00000, ccd_00001, ...`` and
    ``out/simulation.json``.

    All or nothing: the frames are written into a staged copy of ``out``
    that replaces it only when every frame is done, so a run that is
    cancelled or fails leaves ``out`` (and frames of an earlier run) as it
    was (see :mod:`core.transaction`).

    Raises
    ------
    UserInputError
        For unusable settings or an output path that is a file, before
        anything is written.
    """
    from core.overlap import output_path
    from core.transaction import Transaction

    settings = settings if settings is not None else CCDSettings()
    progress = progress if progress is not None else Progress()
    settings.validate()
    out = output_path(out)
    _check_output(out, settings)
    earlier = _check_frames_to_replace(out, settings)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"The output folder cannot be created: {out} ({exc.strerror})") from None
    with Transaction(out.parent) as tx:
        result = _simulate(out, tx.stage(out), settings, progress, earlier)
        if not result.cancelled:
            tx.commit()
    return result


def _simulate(out: Path, staged: Path, settings: CCDSettings, progress: Progress,
              earlier: set[str] = frozenset()) -> CCDResult:
    """Simulate the frames into ``staged``, the copy of ``out`` being written;
    the ``earlier`` simulation's frames there are replaced (those this run
    does not write again are removed, so images, masks and simulation.json agree)."""
    images, masks = staged / "images", staged / "masks"
    try:
        images.mkdir(parents=True, exist_ok=True)
        masks.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"The output folder cannot be created: {out} ({exc.strerror})") from None
    ours = {frame_stem(i) for i in range(settings.count)}
    present = {p.stem for p in images.glob("ccd_*.tif")} & earlier
    if present:
        progress.log(f"{out} holds {len(present)} frame(s) of an earlier simulation: they are replaced by this one")
        for stem in present - ours:
            (images / f"{stem}.tif").unlink(missing_ok=True)
            (masks / f"{stem}.png").unlink(missing_ok=True)
    others = [p for p in images.iterdir() if p.is_file() and p.stem not in ours and not p.name.startswith(".")]
    if others:
        progress.log(f"{images} already holds {len(others)} other file(s); they are left as they are "
                     "and will be paired with their masks by name.")

    progress.update(0, settings.count, "simulating CCD frames")
    start = time.perf_counter()
    pixel_counts = np.zeros(len(CLASS_NAMES), np.int64)
    frames: list[dict] = []
    cancelled = False
    for index in range(settings.count):
        if progress.cancelled:
            cancelled = True
            break
        result = render_frame(frame_rng(settings.seed, index), settings)
        stem = frame_stem(index)
        try:
            write_image(images / f"{stem}.tif", result.frame)
            write_image(masks / f"{stem}.png", result.mask)
        except OSError as exc:  # disk full, folder removed meanwhile, no permission
            raise UserInputError(f"Cannot write frame {stem} into {out}: {exc.strerror or exc}") from None
        pixel_counts += np.bincount(result.mask.reshape(-1), minlength=len(CLASS_NAMES))
        frames.append({"file": stem, **result.info})
        progress.update(index + 1, settings.count, f"frame {stem}")
    seconds = time.perf_counter() - start

    total = max(int(pixel_counts.sum()), 1)
    fractions = {name: float(c) / total for name, c in zip(CLASS_NAMES, pixel_counts)}
    write_json_atomic(staged / "simulation.json", {
        "what": "simulated CCD frames with exact class masks",
        "files": {"images": "images/<stem>.tif (float32, ADU)",
                  "masks": "masks/<stem>.png (uint8 class index, same stem)"},
        "classes": list(CLASS_NAMES),
        "label_rule": ("a pixel takes the class whose noise-free signal there is largest among classes "
                       f"reaching {settings.label_snr} x local noise sigma, counting only objects with a "
                       f"matched-filter SNR of at least {settings.detect_snr}; hot pixels and clusters "
                       "override glow"),
        "settings": asdict(settings),
        "frames_written": len(frames),
        "cancelled": cancelled,
        "class_pixel_fractions": fractions,
        "frames": frames,
    })
    return CCDResult(out, settings.count, settings.size, int(settings.seed), len(frames),
                     fractions, seconds, cancelled)
