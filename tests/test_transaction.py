"""All-or-nothing stages: staged copies, the swap, and recovery after a kill."""

import json
import os
import shutil
from pathlib import Path

import pytest

from core.atomic import write_text_atomic
from core.transaction import JOURNAL, STAGING_PREFIX, Transaction, recover

pytestmark = pytest.mark.slow  # stages in child processes


def tree(root):
    """Every file under ``root`` (hidden staging areas excluded) with its text."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = open(path, encoding="utf-8").read()
    return out


@pytest.fixture
def workdir(tmp_path):
    wd = tmp_path / "wd"
    (wd / "objects" / "images").mkdir(parents=True)
    for i in range(3):
        (wd / "objects" / "images" / f"o{i}.png").write_text(f"crop {i}")
    (wd / "objects" / "index.csv").write_text("file\no0.png\no1.png\no2.png\n")
    (wd / "project.json").write_text('{"stages": {}}')
    (wd / "photos").mkdir()
    (wd / "photos" / "a.png").write_text("photo")
    return wd


def test_commit_swaps_in_the_staged_copies(workdir):
    with Transaction(workdir) as tx:
        objects = tx.stage(workdir / "objects")
        project = tx.stage(workdir / "project.json")
        write_text_atomic(objects / "images" / "o3.png", "crop 3")
        (objects / "images" / "o0.png").unlink()
        write_text_atomic(objects / "index.csv", "file\no1.png\no2.png\no3.png\n")
        write_text_atomic(project, '{"stages": {"autoseg": {}}}')
        assert sorted(tree(workdir / "objects" / "images")) == ["o0.png", "o1.png", "o2.png"]  # not yet
        tx.commit()
    assert sorted(tree(workdir / "objects" / "images")) == ["o1.png", "o2.png", "o3.png"]
    assert (workdir / "objects" / "index.csv").read_text().endswith("o3.png\n")
    assert "autoseg" in (workdir / "project.json").read_text()
    assert not list(workdir.glob(".*"))  # no staging, no marker left behind
    assert not (workdir / "objects" / ".staged-copy").exists()


def test_a_stage_that_fails_or_is_cancelled_changes_nothing(workdir):
    before = tree(workdir)
    with pytest.raises(RuntimeError):
        with Transaction(workdir) as tx:
            objects = tx.stage(workdir / "objects")
            write_text_atomic(objects / "images" / "o0.png", "changed through the copy")
            write_text_atomic(objects / "new.txt", "new")
            raise RuntimeError("a fault mid-way")
    with Transaction(workdir) as tx:  # cancelled: no commit
        write_text_atomic(tx.stage(workdir / "objects") / "index.csv", "file\n")
    assert tree(workdir) == before
    assert not list(workdir.glob(f"{STAGING_PREFIX}*"))


def test_a_folder_outside_the_home_is_staged_beside_itself(workdir, tmp_path):
    model = tmp_path / "models" / "mine"
    model.mkdir(parents=True)
    (model / "model.keras").write_text("weights 1")
    with Transaction(workdir) as tx:
        staged = tx.stage(model)
        assert staged.parent == model.parent and staged.name.startswith(".")
        write_text_atomic(staged / "model.keras", "weights 2")
    assert (model / "model.keras").read_text() == "weights 1"
    assert sorted(p.name for p in model.parent.iterdir()) == ["mine"]
    with Transaction(workdir) as tx:
        write_text_atomic(tx.stage(model) / "model.keras", "weights 2")
        tx.commit()
    assert (model / "model.keras").read_text() == "weights 2"
    assert sorted(p.name for p in model.parent.iterdir()) == ["mine"]


def test_a_part_can_start_from_another_folder(workdir, tmp_path):
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    (bundled / "model.keras").write_text("bundled")
    with Transaction(workdir) as tx:
        staged = tx.stage(workdir / "model", source=bundled)
        assert (staged / "model.keras").read_text() == "bundled"
        write_text_atomic(staged / "model.keras", "trained")
        tx.commit()
    assert (workdir / "model" / "model.keras").read_text() == "trained"
    assert (bundled / "model.keras").read_text() == "bundled"


def test_a_transaction_inside_a_staged_copy_works_on_the_copy(workdir):
    with Transaction(workdir) as outer:
        objects = outer.stage(workdir / "objects")
        with Transaction(outer.area) as inner:
            assert inner.passthrough
            assert inner.stage(objects) == objects
            write_text_atomic(objects / "inner.txt", "x")
            inner.commit()
        assert (objects / "inner.txt").exists() and not (workdir / "objects" / "inner.txt").exists()
        outer.commit()
    assert (workdir / "objects" / "inner.txt").read_text() == "x"


def test_a_swap_cut_short_by_a_kill_is_finished_by_the_next_stage(workdir, monkeypatch):
    import core.transaction as transaction

    renames = []
    real_rename = os.rename

    def rename_then_die(src, dst):
        renames.append((src, dst))
        if len(renames) >= 2:  # the old objects moved aside, the new ones not yet in
            raise OSError("the process dies here")
        real_rename(src, dst)

    monkeypatch.setattr(transaction.os, "rename", rename_then_die)
    with pytest.raises(OSError):
        with Transaction(workdir) as tx:
            write_text_atomic(tx.stage(workdir / "objects") / "index.csv", "file\nnew\n")
            write_text_atomic(tx.stage(workdir / "project.json"), "{}")
            tx.commit()
    monkeypatch.setattr(transaction.os, "rename", real_rename)
    assert not (workdir / "objects").exists()  # half swapped
    areas = list(workdir.glob(f"{STAGING_PREFIX}*"))
    assert len(areas) == 1 and (areas[0] / JOURNAL).is_file()
    assert json.loads((areas[0] / JOURNAL).read_text())["parts"]
    transaction._LIVE.clear()  # the next stage runs in a new process
    lines = recover(workdir)
    assert lines and "interrupted" in lines[0]
    assert (workdir / "objects" / "index.csv").read_text() == "file\nnew\n"
    assert (workdir / "project.json").read_text() == "{}"
    assert sorted(tree(workdir / "objects" / "images")) == ["o0.png", "o1.png", "o2.png"]
    assert not list(workdir.glob(f"{STAGING_PREFIX}*"))


def test_staging_left_by_a_killed_stage_is_removed(workdir, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    tx = Transaction(workdir).__enter__()
    tx.stage(workdir / "objects")
    staged_model = tx.stage(model)
    assert staged_model.exists()
    # the process dies here: no commit, no discard
    before = tree(workdir)
    recover(workdir)
    assert list(workdir.glob(f"{STAGING_PREFIX}*"))  # still open in this process: left alone
    import core.transaction as transaction

    transaction._LIVE.clear()  # the next stage runs in a new process
    recover(workdir)
    assert not list(workdir.glob(f"{STAGING_PREFIX}*")) and not staged_model.exists()
    assert tree(workdir) == before


def test_staged_files_are_links_where_possible_and_the_originals_never_change(workdir):
    with Transaction(workdir) as tx:
        objects = tx.stage(workdir / "objects")
        original = workdir / "objects" / "images" / "o1.png"
        assert os.path.samefile(objects / "images" / "o1.png", original)
        write_text_atomic(objects / "images" / "o1.png", "replaced")
        assert original.read_text() == "crop 1"


def test_paths_into_the_staged_copy_are_saved_as_the_real_places(workdir, tmp_path):
    from core.atomic import write_json_atomic

    model = tmp_path / "model"
    with Transaction(workdir) as tx:
        synthetic = tx.stage(workdir / "synthetic")
        staged_model = tx.stage(model)
        write_json_atomic(staged_model / "model.json", {"training": {"data": str(synthetic)},
                                                        "runs": [{"data": str(synthetic / "images")}],
                                                        "other": "elsewhere"})
        write_json_atomic(synthetic / "info.json", {"model": str(staged_model.resolve())})
        tx.commit()
    meta = json.loads((model / "model.json").read_text())
    assert meta["training"]["data"] == str(workdir.resolve() / "synthetic")
    assert meta["runs"][0]["data"] == str(workdir.resolve() / "synthetic" / "images")
    assert meta["other"] == "elsewhere"
    assert json.loads((workdir / "synthetic" / "info.json").read_text())["model"] == str(model.resolve())


def test_a_stage_running_in_another_process_keeps_its_staging(workdir):
    import subprocess
    import sys

    from core.atomic import write_json_atomic
    from core.transaction import OWNER

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        area = workdir / f"{STAGING_PREFIX}0123456789ab"
        area.mkdir()
        write_json_atomic(area / OWNER, {"pid": sleeper.pid, "host": __import__("socket").gethostname()})
        recover(workdir)
        assert area.is_dir()
    finally:
        sleeper.kill()
        sleeper.wait()
    recover(workdir)
    assert not area.exists()


def test_two_stages_changing_the_same_folder_at_once_the_second_is_refused(workdir):
    from core.errors import UserInputError

    with Transaction(workdir) as first:
        staged = first.stage(workdir / "objects")
        write_text_atomic(staged / "images" / "o3.png", "crop 3")
        with Transaction(workdir) as second:
            second.stage(workdir / "synthetic")  # another part: no conflict
            with pytest.raises(UserInputError, match="being changed by another run .another stage of this program"):
                second.stage(workdir / "objects" / "index.csv")
        assert len(list(workdir.glob(f"{STAGING_PREFIX}*"))) == 1  # the refused one left nothing
        first.commit()
    assert (workdir / "objects" / "images" / "o3.png").read_text() == "crop 3"


def test_a_second_writer_from_the_command_line_gets_one_message_and_changes_nothing(tmp_path):
    """A stage holds the working directory in another process; autoseg from
    the command line is refused naming it; after that process is killed the
    same command runs."""
    import subprocess
    import sys

    from conftest import ROOT
    from core.imageio import write_image
    from helpers import run_app, tree_digest
    from synthetic.scenes import render_particle_scene

    photos, wd = tmp_path / "photos", tmp_path / "wd"
    photos.mkdir()
    image, _ = render_particle_scene((128, 160), count=8, radius=(6, 9), seed=3)
    write_image(photos / "p.png", image)
    wd.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]);"
         "from core.transaction import Transaction; tx = Transaction(sys.argv[2]).__enter__();"
         "tx.stage(sys.argv[2] + '/objects'); print('holding', flush=True); time.sleep(60)", str(ROOT), str(wd)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        before = tree_digest(wd)
        refused = run_app("autoseg", "--images", photos, "--workdir", wd)
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "being changed by another run" in lines[0] and f"process {holder.pid}" in lines[0]
        assert tree_digest(wd) == before
    finally:
        holder.kill()
        holder.wait()
    done = run_app("autoseg", "--images", photos, "--workdir", wd)
    assert done.returncode == 0, done.stderr
    assert (wd / "objects" / "index.csv").is_file()
    assert not list(wd.glob(f"{STAGING_PREFIX}*"))


def test_temporary_files_left_by_a_killed_writer_are_removed_once_stale(workdir):
    import time

    from core.atomic import remove_stale_parts

    stale = workdir / ".project.abc12345.part.json"
    fresh = workdir / ".project.def45678.part.json"
    stale.write_text("{half")
    fresh.write_text("{being written")
    users = [workdir / ".thesis.partial.txt", workdir / ".notes.part", workdir / ".staging-notes.txt"]
    for path in users:  # a user's own hidden files, named like leftovers
        path.write_text("mine")
    old = time.time() - 7200
    for path in [stale, *users]:
        os.utime(path, (old, old))
    lines = recover(workdir)
    assert not stale.exists() and fresh.exists()  # a file being written now is left alone
    assert all(path.read_text() == "mine" for path in users)
    assert lines == ["removed 1 temporary file(s) left by a stage that was killed"]
    assert remove_stale_parts(workdir, older_than_s=0) == 1 and not fresh.exists()


def test_a_replaced_folder_holding_a_read_only_folder_is_removed_whole(tmp_path):
    """A user's read-only folder inside a folder a stage replaces does not
    leave the old copy behind (``.staging-*/.old``). Run as an ordinary
    user (as root every folder is writable)."""
    import subprocess
    import sys
    import tempfile

    from conftest import ROOT

    as_user, python = {}, sys.executable
    if os.geteuid() == 0:
        # The module needs only the standard library: a Python that user may run.
        python = shutil.which("python3", path="/usr/bin:/usr/local/bin") or sys.executable
        as_user["preexec_fn"] = lambda: (os.setgid(65534), os.setuid(65534))
    place = Path(tempfile.mkdtemp(prefix="readonly-"))
    place.chmod(0o777)
    code = ("import os, sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path;"
            "from core.copies import remove as _remove; d = Path(sys.argv[2]) / 'old';"
            "(d / 'locked').mkdir(parents=True); (d / 'locked' / 'f.txt').write_text('x');"
            "os.chmod(d / 'locked', 0o555); _remove(d); print('gone' if not d.exists() else 'left')")
    try:
        done = subprocess.run([python, "-c", code, str(ROOT), str(place)], capture_output=True, text=True,
                              timeout=60, **as_user)
        assert done.stdout.strip() == "gone", done.stderr
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", str(place)])
        shutil.rmtree(place, ignore_errors=True)
