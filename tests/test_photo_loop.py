"""The one loop every stage runs over its photos."""

import numpy as np

from core.imageio import write_image
from core.photos import PhotoLoop
from core.progress import Progress


class Recorded(Progress):
    def __init__(self, cancel_at=None):
        super().__init__()
        self.lines, self.updates, self.cancel_at = [], [], cancel_at

    def on_log(self, text):
        self.lines.append(text)

    def on_update(self, done, total, message):
        self.updates.append((done, total, message))
        if self.cancel_at is not None and done == self.cancel_at:
            self.cancel()


def photos(tmp_path):
    for name in ("a.png", "b.png", "c.png", "c.tif"):
        write_image(tmp_path / name, np.full((8, 8), ord(name[0]), np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    return sorted(tmp_path.iterdir())


def test_reads_each_photo_skips_the_unreadable_and_passes_by_on_request(tmp_path):
    files = photos(tmp_path)
    progress = Recorded()
    loop = PhotoLoop(files, progress, doing="looking at", skip=lambda p: "done before" if p.name == "b.png" else None)
    seen = [(i, path.name, int(image[0, 0])) for i, path, image in loop]
    assert seen == [(0, "a.png", ord("a")), (3, "c.png", ord("c")), (4, "c.tif", ord("c"))]
    assert loop.skipped == ["broken.png"] and loop.passed == 1 and not loop.cancelled
    assert "b.png: done before" in progress.lines and any(line.startswith("skipped: ") for line in progress.lines)
    assert progress.updates[0] == (0, 5, "looking at a.png")
    assert [loop.stem(p) for p in files] == ["a", "b", "broken", "c_png", "c_tif"]


def test_stops_when_cancelled(tmp_path):
    files = photos(tmp_path)
    loop = PhotoLoop(files, Recorded(cancel_at=1))
    seen = [path.name for _, path, _ in loop]
    assert seen == ["a.png", "b.png"] and loop.cancelled  # the photo begun when Cancel came is finished


def test_pipeline_and_rounds_name_the_photos_they_could_not_read():
    from types import SimpleNamespace

    from loop import PipelineResult, RefineResult

    pipeline = PipelineResult(steps={"auto-segmentation": SimpleNamespace(failed=["x.png"]),
                                     "training": SimpleNamespace(),
                                     "segmentation": SimpleNamespace(failed=["x.png", "y.tif"])})
    assert pipeline.failed == ["x.png", "y.tif"]
    assert RefineResult(last_segment=SimpleNamespace(failed=["y.tif"])).failed == ["y.tif"]
    assert RefineResult().failed == []
