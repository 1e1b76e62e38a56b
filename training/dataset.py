"""The streamed input pipeline: patches, augmentation, ``tf.data``.

Images are read from disk as training needs them (decoded and normalised
images are kept in memory only up to ``cache_mb``), cut into square patches
of the training size, augmented, and batched by ``tf.data`` while the
previous batch trains. Normalisation is :func:`training.normalize.normalize_image`
with the parameters stored in model.json, exactly as at prediction time.

Augmentation (training patches only): 90-degree rotations and flips,
brightness and contrast, Gaussian noise and, for photos, a slight blur.
Detector frames are never blurred: a blurred hot pixel looks like a cluster,
and its label would then be wrong.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from core.imageio import read_image
from training.data_files import DataPair, DataSet, read_mask
from training.normalize import normalize_image


@dataclass
class Augmentation:
    """How strongly training patches are varied (0 or False disables one)."""

    flips: bool = True
    contrast: float = 0.2  # factor drawn from [1 - c, 1 + c]
    brightness: float = 0.1  # shift drawn from [-b, b] (normalised units)
    noise: float = 0.03  # Gaussian sigma drawn from [0, noise], half of the patches
    blur: float = 1.0  # Gaussian sigma drawn from [0.3, blur], a quarter of the patches

    @classmethod
    def for_mode(cls, mode: str, enabled: bool = True) -> Augmentation:
        """Defaults for a normalisation mode ("detector" frames: no blur)."""
        if not enabled:
            return cls(flips=False, contrast=0.0, brightness=0.0, noise=0.0, blur=0.0)
        if mode == "detector":
            return cls(contrast=0.1, brightness=0.05, noise=0.05, blur=0.0)
        return cls()


class SampleSource:
    """Normalised images and class masks of a data set, read on demand and
    kept in memory while the cache budget allows."""

    def __init__(self, data: DataSet, normalization: dict, *, cache_mb: float = 1024.0) -> None:
        self.data = data
        self.normalization = normalization
        self._budget = int(cache_mb * 2**20)
        self._used = 0
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        # The training and validation streams read from tf.data threads.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.data.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(image float32 H x W, mask uint8 H x W) of pair ``index``."""
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
        pair: DataPair = self.data.pairs[index]
        image = normalize_image(read_image(pair.image), self.normalization)
        mask = read_mask(pair.mask)
        if self.data.binary_255:
            mask = mask > 0
        mask = mask.astype(np.uint8)
        size = image.nbytes + mask.nbytes
        with self._lock:
            if size <= self._budget and index not in self._cache:
                while self._used + size > self._budget and self._cache:
                    _, (old_x, old_y) = self._cache.popitem(last=False)
                    self._used -= old_x.nbytes + old_y.nbytes
                self._cache[index] = (image, mask)
                self._used += size
        return image, mask


def pad_to(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Reflect-pad both arrays so that each side is at least ``size``."""
    pad_y, pad_x = max(0, size - image.shape[0]), max(0, size - image.shape[1])
    if pad_y or pad_x:
        widths = ((pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2))
        image = np.pad(image, widths, mode="symmetric")
        mask = np.pad(mask, widths, mode="symmetric")
    return image, mask


def patches_per_image(shape: tuple[int, int], size: int, limit: int = 16) -> int:
    """Random patches drawn from an image per epoch: about one per patch area."""
    return int(max(1, min(limit, round(shape[0] * shape[1] / float(size * size)))))


def grid_starts(length: int, size: int) -> list[int]:
    """Start offsets of non-overlapping windows covering ``length`` (the last
    one snapped to the end)."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size, size))
    return starts + [length - size]


def augment(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, aug: Augmentation,
            *, clip: bool) -> tuple[np.ndarray, np.ndarray]:
    """A randomly varied copy of a square patch and its mask."""
    if aug.flips:
        k = int(rng.integers(4))
        image, mask = np.rot90(image, k), np.rot90(mask, k)
        if rng.random() < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
    image = np.array(image, dtype=np.float32)  # contiguous own copy
    mask = np.ascontiguousarray(mask)
    if aug.blur > 0 and rng.random() < 0.25:
        from scipy.ndimage import gaussian_filter

        image = gaussian_filter(image, float(rng.uniform(0.3, max(0.3, aug.blur))))
    if aug.contrast > 0 or aug.brightness > 0:
        factor = rng.uniform(1.0 - aug.contrast, 1.0 + aug.contrast)
        shift = rng.uniform(-aug.brightness, aug.brightness)
        centre = 0.5 if clip else 0.0
        image = (image - centre) * np.float32(factor) + np.float32(centre + shift)
    if aug.noise > 0 and rng.random() < 0.5:
        image += rng.normal(0.0, rng.uniform(0.0, aug.noise), image.shape).astype(np.float32)
    if clip:
        np.clip(image, 0.0, 1.0, out=image)
    return image, mask


def training_patches(source: SampleSource, indices: list[int], size: int, rng: np.random.Generator,
                     aug: Augmentation) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless stream of augmented random patches, one pass over the images
    (in a new random order) after another."""
    clip = source.normalization.get("mode") == "percentile"
    draws = [i for i in indices for _ in range(patches_per_image(source.data.pairs[i].shape, size))]
    while True:
        for i in rng.permutation(draws):
            image, mask = pad_to(*source.load(int(i)), size)
            y0 = int(rng.integers(image.shape[0] - size + 1))
            x0 = int(rng.integers(image.shape[1] - size + 1))
            window = (slice(y0, y0 + size), slice(x0, x0 + size))
            patch, target = augment(image[window], mask[window], rng, aug, clip=clip)
            yield patch[..., None], target


def validation_patches(source: SampleSource, indices: list[int], size: int
                       ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The same patches every epoch: a grid of windows covering each image."""
    for i in indices:
        image, mask = pad_to(*source.load(i), size)
        for y0 in grid_starts(image.shape[0], size):
            for x0 in grid_starts(image.shape[1], size):
                window = (slice(y0, y0 + size), slice(x0, x0 + size))
                yield np.ascontiguousarray(image[window])[..., None], np.ascontiguousarray(mask[window])


def count_training_patches(source: SampleSource, indices: list[int], size: int) -> int:
    return sum(patches_per_image(source.data.pairs[i].shape, size) for i in indices)


def count_validation_patches(source: SampleSource, indices: list[int], size: int) -> int:
    total = 0
    for i in indices:
        h, w = source.data.pairs[i].shape
        total += len(grid_starts(max(h, size), size)) * len(grid_starts(max(w, size), size))
    return total


def split_indices(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded random (train, validation) split of ``count`` samples; with a
    single sample both sets hold it."""
    if count < 2:
        return [0], [0]
    n_val = min(count - 1, max(1, int(round(count * fraction))))
    order = np.random.default_rng(seed).permutation(count)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def make_tf_dataset(generator_fn, size: int, batch_size: int, *, repeat: bool = False):
    """Wrap a patch generator in a batched, prefetched ``tf.data.Dataset``.

    ``repeat``: a finite generator (the validation patches) is run again
    whenever it ends, whole batches at a time, so every pass gives the same
    batches however the caller iterates (training on several devices keeps
    one iterator over all epochs)."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_generator(
        generator_fn,
        output_signature=(tf.TensorSpec((size, size, 1), tf.float32), tf.TensorSpec((size, size), tf.uint8)),
    )
    dataset = dataset.batch(batch_size)
    return (dataset.repeat() if repeat else dataset).prefetch(2)


def steps_for(patches: int, batch_size: int) -> int:
    return max(1, math.ceil(patches / batch_size))
