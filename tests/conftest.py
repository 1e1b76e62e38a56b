import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Converted models are cached for the run only, never in the user's own cache folder.
os.environ.setdefault("SEGLOOP_CACHE_DIR", os.path.join(__import__("tempfile").mkdtemp(prefix="segloop-cache-")))

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_DATA = ROOT.parent / "shared" / "data"


import pytest  # noqa: E402

# Tests that train or load a model (TensorFlow) are left out of the fast
# lane (make test-fast) and run by make test: a module says so itself
# (pytestmark = pytest.mark.slow) and a test that uses a trained model is
# marked by its fixture. In the fast lane (SEGLOOP_FAST_LANE=1, set by
# make test-fast) TensorFlow cannot be imported at all, so a test that
# loads it without the mark fails there, saying which mark it lacks; test
# modules therefore import TensorFlow only inside their tests.
SLOW_FIXTURES = {"tiny_project"}


class _NoTensorFlowInTheFastLane:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("tensorflow", "keras"):
            raise ImportError(f"{name} was imported by a test of the fast lane: mark that test (or its module) "
                              "slow, pytest.mark.slow, so that make test-fast leaves it out")
        return None


if os.environ.get("SEGLOOP_FAST_LANE"):
    sys.meta_path.insert(0, _NoTensorFlowInTheFastLane())

# What tiny_project holds: synthetic images and training epochs.
TINY_SYNTHETIC = 24
TINY_EPOCHS = 8


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module.startswith("test_gui_"):
            item.add_marker(pytest.mark.gui)
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory):
    """Two photos, a working directory with an auto-segmented pool and a
    tiny model trained on it (about 15 s), made once for the whole run.
    Tests copy what they change: nothing here may be written to."""
    from core.imageio import write_image
    from helpers import tiny_training
    from segmentation import run_autoseg
    from synthetic import SynthesisSettings, run_synthesize
    from synthetic.scenes import render_particle_scene
    from training import run_training

    root = tmp_path_factory.mktemp("tiny_project")
    photos = root / "photos"
    photos.mkdir()
    for i in range(2):
        image, _ = render_particle_scene((96, 128), count=8, radius=(6, 11), seed=40 + i)
        write_image(photos / f"p{i}.png", image)
    run_autoseg(photos, root / "wd")
    run_synthesize(root / "wd", settings=SynthesisSettings(count=TINY_SYNTHETIC, size=64, object_diameter=16))
    run_training(root / "wd" / "synthetic", root / "model", settings=tiny_training(epochs=TINY_EPOCHS))
    return root
