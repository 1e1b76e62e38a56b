"""Splitting touching particles on real electron micrographs.

The EMPS development set holds 60 micrographs with expert instance masks.
Merging every expert instance into one foreground mask and splitting it again
must give back the expert's particle count (within 10 %) and median
equivalent diameter (within 5 %) on at least 50 of the 60 photos. The failures
left are particles that overlap so far that no neck remains (crossing rods,
stacked spheres), which no mask-only method can separate.
"""

import numpy as np
import pytest

from conftest import SHARED_DATA
from core.imageio import list_images, read_image
from segmentation import label_instances

EMPS = SHARED_DATA / "emps-dev"

pytestmark = pytest.mark.skipif(
    not (EMPS / "masks").is_dir(),
    reason=f"EMPS development data not found at {EMPS} (real-data test, run where ../shared/data exists)",
)


def count_and_median_diameter(labels: np.ndarray) -> tuple[int, float]:
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    if areas.size == 0:
        return 0, 0.0
    return int(areas.size), float(np.median(np.sqrt(4.0 * areas / np.pi)))


def test_split_touching_recovers_expert_counts_and_sizes():
    masks = list_images(EMPS / "masks", what="EMPS masks folder")
    assert len(masks) == 60
    passed, report = 0, []
    for path in masks:
        expert = read_image(path)
        true_count, true_median = count_and_median_diameter(expert)
        labels, classes = label_instances((expert > 0).astype(np.uint8))
        count, median = count_and_median_diameter(labels)
        ok = abs(count - true_count) <= 0.1 * true_count and abs(median - true_median) <= 0.05 * true_median
        passed += ok
        if not ok:
            report.append(f"{path.stem}: {count} objects (expert {true_count}), "
                          f"median diameter {median:.1f} px (expert {true_median:.1f})")
    assert passed >= 50, f"only {passed}/60 photos within tolerance:\n" + "\n".join(report)
