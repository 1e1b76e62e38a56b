"""The model folder type: its files, its versioned description."""

import json
import shutil

import pytest

from conftest import ROOT
from core.errors import UserInputError
from core.model_folder import META_VERSION, ModelFolder, read_meta, write_meta

BUNDLED = ROOT / "checkpoints"


def test_the_folder_names_its_files_and_reads_its_description():
    folder = ModelFolder(BUNDLED)
    assert folder.model_file == BUNDLED / "model.keras" and folder.history == BUNDLED / "history.csv"
    assert folder.holds_model() and folder.saved_epoch() == folder.meta()["best_epoch"]
    assert folder.read_only_reason() == "the bundled model"


def test_a_description_is_written_with_its_version_and_only_when_valid(tmp_path):
    meta = read_meta(BUNDLED)
    meta.pop("version", None)
    write_meta(tmp_path, meta)
    written = json.loads((tmp_path / "model.json").read_text())
    assert written["version"] == META_VERSION and written["format"] == "segloop-unet"
    assert read_meta(tmp_path)["classes"] == meta["classes"]
    with pytest.raises(ValueError, match="architecture"):
        write_meta(tmp_path, {**meta, "architecture": {}})
    assert json.loads((tmp_path / "model.json").read_text()) == written  # the valid one stays


def test_a_description_from_a_newer_version_is_refused_with_one_message(tmp_path):
    shutil.copy(BUNDLED / "model.json", tmp_path / "model.json")
    meta = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**meta, "version": META_VERSION + 1}))
    with pytest.raises(UserInputError, match="newer version of this application"):
        ModelFolder(tmp_path).meta()
