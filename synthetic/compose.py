"""Synthetic training images composited from the object pool.

Each image is a crop of a background made from the user's photos (or, for a
share of images, a generated one) with pool objects pasted by their masks:
randomly rotated, flipped and scaled (aspect ratio kept), with brightness and
contrast brought to the background's photo and jittered, and soft (feathered)
edges so that the seam is no cue. Density and sizes follow what
auto-segmentation saw in the photos; objects may touch, overlap and be cut by
the border.

The mask is exact: a pixel is labelled with an object's class when at least
half of its value comes from that object (alpha >= 0.5) and no later paste
covers it that way; a later paste occludes an earlier one, and nothing is
erased from the label while its pixels remain visible.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from core.atomic import write_json_atomic
from core.coco import CocoCollector
from core.errors import UserInputError
from core.imageio import write_image
from core.progress import Progress
from core.workdir import WorkingDirectory
from synthetic.backgrounds import Background, generated_background, random_crop
from synthetic.settings import SynthesisSettings
from synthetic.sources import PoolObject, Sources, load_backgrounds, load_pool, photo_stats

SYNTHESIS_JSON = "synthesis.json"
COCO_JSON = "annotations.json"  # the same images' objects as COCO instances, for other tools


@dataclass
class SynthesisResult:
    images: int = 0
    objects_pasted: int = 0
    num_classes: int = 2
    photo_backgrounds: int = 0
    folder: str = ""
    cancelled: bool = False

    def summary(self) -> str:
        text = (f"Made {self.images} synthetic image(s) with {self.objects_pasted} pasted objects "
                f"({self.num_classes - 1} object class(es)) in {self.folder}, "
                f"backgrounds from {self.photo_backgrounds} photo(s).")
        if self.cancelled:
            text += " Cancelled before the end; the images made so far are kept."
        return text


def paste_object(image: np.ndarray, classes: np.ndarray, instances: np.ndarray, obj_gray: np.ndarray,
                 alpha: np.ndarray, top: int, left: int, cls: int, instance: int, *,
                 seam_blur: bool = True) -> int:
    """Paste one object (in place). Returns how many pixels it now labels.

    ``alpha`` is the object's opacity in [0, 1]; pixels where it is at least
    0.5 take the object's class and instance id.
    """
    h, w = image.shape
    oh, ow = alpha.shape
    r0, c0 = max(0, top), max(0, left)
    r1, c1 = min(h, top + oh), min(w, left + ow)
    if r0 >= r1 or c0 >= c1:
        return 0
    sr0, sc0 = r0 - top, c0 - left
    a = alpha[sr0:sr0 + r1 - r0, sc0:sc0 + c1 - c0]
    v = obj_gray[sr0:sr0 + r1 - r0, sc0:sc0 + c1 - c0]
    region = image[r0:r1, c0:c1]
    region[...] = region * (1.0 - a) + v * a
    if seam_blur:
        seam = (a > 0.05) & (a < 0.95)
        if seam.any():
            soft = ndi.gaussian_filter(region, 0.6)
            region[seam] = soft[seam]
    label = a >= 0.5
    classes[r0:r1, c0:c1][label] = cls
    instances[r0:r1, c0:c1][label] = instance
    return int(label.sum())


def transform_object(obj: PoolObject, scale: float, angle: float, flip: bool,
                     feather: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate, flip and scale an object's gray crop and alpha together."""
    gray, alpha = obj.gray, obj.alpha
    if flip:
        gray, alpha = gray[:, ::-1], alpha[:, ::-1]
    h, w = alpha.shape
    theta = np.deg2rad(angle)
    cos, sin = np.cos(theta), np.sin(theta)
    out_h = int(np.ceil(abs(h * cos) + abs(w * sin)) * scale) + 2
    out_w = int(np.ceil(abs(w * cos) + abs(h * sin)) * scale) + 2
    # output -> input mapping: inverse rotation and scaling about the centres
    matrix = np.array([[cos, sin], [-sin, cos]]) / scale
    centre_out = np.array([(out_h - 1) / 2, (out_w - 1) / 2])
    centre_in = np.array([(h - 1) / 2, (w - 1) / 2])
    offset = centre_in - matrix @ centre_out
    if scale < 0.7:  # anti-alias before shrinking
        gray = ndi.gaussian_filter(gray, 0.4 / scale)
    g = ndi.affine_transform(gray, matrix, offset, output_shape=(out_h, out_w), order=1, mode="nearest")
    a = ndi.affine_transform(alpha, matrix, offset, output_shape=(out_h, out_w), order=1, mode="constant",
                             cval=0.0)
    if feather > 0:
        a = ndi.gaussian_filter(a, feather)
    return g.astype(np.float32), np.clip(a, 0.0, 1.0).astype(np.float32)


def compose_image(rng: np.random.Generator, background: Background, canvas: np.ndarray, sources: Sources,
                  settings: SynthesisSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Composite one image on ``canvas`` (a background crop, modified in place).

    Returns the image, the class mask (uint8), the instance map (int32) and
    the number of objects pasted.
    """
    size = canvas.shape[0]
    classes = np.zeros(canvas.shape, np.uint8)
    instances = np.zeros(canvas.shape, np.int32)
    candidates = sources.by_polarity.get(background.polarity) or sources.objects
    same_photo = sources.by_photo.get(background.source, [])
    n = _object_count(rng, background, sources, settings, size)
    pasted = 0
    for _ in range(n):
        pool = same_photo if same_photo and rng.random() < 0.5 else candidates
        obj = pool[int(rng.integers(len(pool)))]
        scale = obj.scale * float(np.exp(rng.normal(0.0, settings.size_jitter)))
        # an object never larger than most of the image, whatever its rotation
        scale = min(scale, 0.9 * size / (1.42 * max(obj.alpha.shape)))
        gray, alpha = transform_object(obj, scale, float(rng.uniform(0, 360)), bool(rng.random() < 0.5),
                                       settings.feather)
        gray = _match_intensity(gray, obj, background, rng, settings.contrast_jitter)
        oh, ow = alpha.shape
        body = alpha >= 0.5
        area = max(1, int(body.sum()))
        for _attempt in range(8):
            top = int(rng.integers(-oh // 3, max(1 - oh // 3, size - 2 * oh // 3 + 1)))
            left = int(rng.integers(-ow // 3, max(1 - ow // 3, size - 2 * ow // 3 + 1)))
            covered = _overlap(instances, body, top, left)
            if covered <= settings.max_overlap * area:
                break
        else:
            continue
        if paste_object(canvas, classes, instances, gray, alpha, top, left, obj.cls, pasted + 1,
                        seam_blur=settings.seam_blur):
            pasted += 1
    extra = background.noise * float(rng.uniform(0.0, 0.5))
    if extra > 0:
        canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(extra)
    np.clip(canvas, 0.0, 1.0, out=canvas)
    return canvas, classes, instances, pasted


def _object_count(rng, background: Background, sources: Sources, settings: SynthesisSettings, size: int) -> int:
    if settings.objects_per_image > 0:
        mean = settings.objects_per_image
    else:
        photo = sources.photos.get(background.source)
        if photo is None or photo.objects == 0 or not photo.width:
            photos = [p for p in sources.photos.values() if p.objects and p.width]
            photo = photos[int(rng.integers(len(photos)))] if photos else None
        if photo is None:
            mean = 10
        else:
            from synthetic.sources import scale_for

            factor = scale_for(photo, settings.object_diameter)
            density = photo.objects / (photo.width * photo.height * factor * factor)
            mean = density * size * size
    return int(np.clip(round(mean * rng.uniform(0.5, 1.5)), 1, 400))


def _match_intensity(gray, obj: PoolObject, background: Background, rng, jitter: float) -> np.ndarray:
    """Carry the object's contrast to its own background over to this background."""
    src = obj.photo
    gain = float(rng.uniform(1 - jitter, 1 + jitter))
    src_contrast = src.object_level - src.background_level
    dst_contrast = background.object_level - background.level
    if abs(src_contrast) > 0.05 and np.sign(src_contrast) == np.sign(dst_contrast) and src.name:
        gain *= dst_contrast / src_contrast
    return (background.level + (gray - src.background_level) * gain).astype(np.float32)


def _instance_classes(instances: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The class of each instance label (index = label)."""
    table = np.zeros(int(instances.max(initial=0)) + 1, np.int64)
    inside = instances > 0
    table[instances[inside]] = classes[inside]
    return table


def _overlap(instances: np.ndarray, body: np.ndarray, top: int, left: int) -> int:
    h, w = instances.shape
    oh, ow = body.shape
    r0, c0, r1, c1 = max(0, top), max(0, left), min(h, top + oh), min(w, left + ow)
    if r0 >= r1 or c0 >= c1:
        return 0
    sub = body[r0 - top:r1 - top, c0 - left:c1 - left]
    return int(np.count_nonzero(sub & (instances[r0:r1, c0:c1] > 0)))


def _pick_background(rng, sources: Sources, settings: SynthesisSettings) -> tuple[Background, np.ndarray]:
    usable = [b for b in sources.backgrounds if min(b.image.shape) >= settings.size]
    if usable and rng.random() >= settings.generated_share:
        bg = usable[int(rng.integers(len(usable)))]
        canvas = random_crop(bg.image, settings.size, rng)
        canvas = canvas * np.float32(rng.uniform(0.95, 1.05)) + np.float32(rng.uniform(-0.03, 0.03))
        return bg, canvas.astype(np.float32)
    photos = [p for p in sources.photos.values() if p.objects] or list(sources.photos.values())
    if photos:
        p = photos[int(rng.integers(len(photos)))]
        bg = Background(np.zeros((1, 1), np.float32), p.name, p.noise, p.background_level, p.object_level,
                        p.polarity)
    else:
        o = sources.objects[int(rng.integers(len(sources.objects)))]
        ring = o.gray[o.alpha == 0]
        level = float(np.median(ring)) if ring.size else 0.5
        inside = float(np.median(o.gray[o.alpha > 0]))
        bg = Background(np.zeros((1, 1), np.float32), "", 0.01, level, inside,
                        "dark" if inside < level else "bright")
    canvas = generated_background(settings.size, bg.level, bg.noise, rng)
    return bg, canvas


def run_synthesize(workdir: str | Path, *, settings: SynthesisSettings | None = None,
                   progress: Progress | None = None) -> SynthesisResult:
    """Composite ``settings.count`` training images into ``<workdir>/synthetic``.

    Writes ``synthetic/images/syn_NNNNN.png`` and ``synthetic/masks/syn_NNNNN.png``
    (uint8 class index, 0 background) with the same names, and
    ``synthetic/synthesis.json``. Earlier synthetic images are replaced.
    Image ``i`` depends only on the seed and ``i``.

    All or nothing: a run that is cancelled or fails leaves the earlier
    synthetic images (and the rest of the working directory) as they were.
    """
    from core.transaction import Transaction

    settings = settings or SynthesisSettings()
    settings.check()
    progress = progress or Progress()
    real = WorkingDirectory(workdir)
    if not real.root.is_dir():
        raise UserInputError(f"The working directory does not exist: {real.root}")
    with Transaction(real.root) as tx:
        for part in (WorkingDirectory.SYNTHETIC, WorkingDirectory.PROJECT):
            tx.stage(real.root / part)
        result = _synthesize(real, WorkingDirectory(tx.root), settings, progress)
        result.folder = str(real.synthetic)
        if not result.cancelled:
            tx.commit()
    return result


def _synthesize(source: WorkingDirectory, wd: WorkingDirectory, settings: SynthesisSettings,
                progress: Progress) -> SynthesisResult:
    """Read the pool and photos of ``source``, write the images into ``wd``."""
    folder, photos = photo_stats(source)
    objects, num_classes = load_pool(source, photos, settings.object_diameter, progress)
    setup_rng = np.random.default_rng([settings.seed, 1 << 30])
    backgrounds = load_backgrounds(source, folder, photos, settings.object_diameter, setup_rng, progress)
    if backgrounds and settings.generated_share < 1.0 and not any(
            min(b.image.shape) >= settings.size for b in backgrounds):
        largest = max(backgrounds, key=lambda b: min(b.image.shape)).image.shape
        fitting = min(largest) // 16 * 16  # a U-Net takes sides in steps of 16
        if settings.fit_size and fitting >= 32 and settings.object_diameter <= fitting:
            progress.log(f"The photos are smaller than {settings.size} pixels at the common object scale "
                         f"(largest {largest[1]}x{largest[0]}): synthetic images of {fitting} pixels instead")
            settings = dataclasses.replace(settings, size=fitting)
        elif settings.fit_size:
            raise UserInputError(f"The photos are too small to composite training images from: the largest is "
                                 f"{largest[1]}x{largest[0]} pixels at the common object scale, and at least 32 "
                                 "are needed")
        else:
            raise UserInputError(
                f"Synthetic image size {settings.size} is larger than every background "
                f"(largest {largest[1]}x{largest[0]} at the common object scale); choose a size of at most "
                f"{min(largest)}")
    sources = Sources(objects, backgrounds, photos, num_classes, any(o.sixteen_bit for o in objects))
    wd.ensure()
    for old in list(wd.synthetic_images.glob("syn_*")) + list(wd.synthetic_masks.glob("syn_*")):
        old.unlink()
    result = SynthesisResult(num_classes=num_classes, folder=str(wd.synthetic),
                             photo_backgrounds=len(backgrounds))
    class_list = ["background"] + [f"class {k}" if num_classes > 2 else "object" for k in range(1, num_classes)]
    coco = CocoCollector(class_list)
    for i in range(settings.count):
        if progress.cancelled:
            result.cancelled = True
            break
        if i % 5 == 0:
            progress.update(i, settings.count, "compositing synthetic images")
        rng = np.random.default_rng([settings.seed, i])
        background, canvas = _pick_background(rng, sources, settings)
        image, classes, instances, pasted = compose_image(rng, background, canvas, sources, settings)
        name = f"syn_{i:05d}.png"
        if sources.sixteen_bit:
            write_image(wd.synthetic_images / name, (image * 65535 + 0.5).astype(np.uint16))
        else:
            write_image(wd.synthetic_images / name, (image * 255 + 0.5).astype(np.uint8))
        write_image(wd.synthetic_masks / name, classes)
        coco.add(name, instances, _instance_classes(instances, classes))  # every object exactly, as pasted
        result.images += 1
        result.objects_pasted += pasted
    progress.update(result.images, settings.count, "done")
    info = {"settings": asdict(settings), "images": result.images, "num_classes": num_classes,
            "classes": class_list,
            "object_diameter": settings.object_diameter, "pool_objects": len(objects),
            "photo_backgrounds": [b.source for b in backgrounds], "cancelled": result.cancelled}
    coco.write(wd.synthetic / COCO_JSON, description="synthetic training images composited by SegLoop "
                                                      "(COCO instances, RLE masks)")
    write_json_atomic(wd.synthetic / SYNTHESIS_JSON, info)
    wd.record_stage("synthesize", {k: v for k, v in info.items() if k != "photo_backgrounds"})
    return result
