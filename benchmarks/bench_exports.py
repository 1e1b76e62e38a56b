"""What the files for other tools cost beside segmentation itself.

    python benchmarks/bench_exports.py [--objects 150] [--repeats 3]

A 2592 x 2048 photo with about ``--objects`` particles (the project's own
scene renderer) is segmented with the bundled model (``segment_photo``, as
``segment`` does), then its exports are timed one by one: the ImageJ ROI
zip, the calibrated label TIFF and everything ``write_measurements`` writes.
Printed: each time (median of ``--repeats``) and the exports' share of the
segmentation time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from core.model_folder import BUNDLED_MODEL, load_model
    from core.quiet_tf import import_tensorflow
    from inference.photo import segment_photo
    from measurement.exports import write_measurements
    from measurement.interop import write_calibrated_labels, write_roi_zip
    from segmentation.instances import label_instances
    from synthetic.scenes import render_particle_scene

    import_tensorflow()
    photo, _ = render_particle_scene((2048, 2592), count=args.objects, polarity="dark", seed=3)
    model, meta = load_model(ROOT / BUNDLED_MODEL)
    t0 = time.perf_counter()
    mask, scale = segment_photo(model, meta, photo, flips=True)
    segmentation = time.perf_counter() - t0
    labels, _ = label_instances(mask)
    count = int(labels.max())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        rois = timed(lambda: write_roi_zip(out / "p_rois.zip", labels), args.repeats)
        calibrated = timed(lambda: write_calibrated_labels(out / "p_labels.tif", labels, 0.5, "µm"), args.repeats)
        from measurement.interop import CocoCollector, write_geojson

        rows = write_measurements(out, "p", photo, mask, pixel_size=0.5).rows
        geojson = timed(lambda: write_geojson(out / "p_objects.geojson", labels, rows), args.repeats)
        coco = timed(lambda: CocoCollector(None).add("p.png", labels, None), args.repeats)
        everything = timed(lambda: write_measurements(out, "p", photo, mask, pixel_size=0.5), args.repeats)
    print(f"2592 x 2048 photo, {count} objects found; segmentation (scale {scale:.2f}, flips) {segmentation:.1f} s")
    print(f"  ImageJ ROI zip          {1000 * rois:7.0f} ms  ({100 * rois / segmentation:.1f} % of segmentation)")
    print(f"  calibrated label TIFF   {1000 * calibrated:7.0f} ms  ({100 * calibrated / segmentation:.1f} %)")
    print(f"  QuPath GeoJSON          {1000 * geojson:7.0f} ms  ({100 * geojson / segmentation:.1f} %)")
    print(f"  COCO RLE masks          {1000 * coco:7.0f} ms  ({100 * coco / segmentation:.1f} %)")
    print(f"  all per-photo files     {1000 * everything:7.0f} ms  ({100 * everything / segmentation:.1f} %: "
          "instances, measurements, mask, labels, ROIs, overlay, CSV)")


if __name__ == "__main__":
    main()
