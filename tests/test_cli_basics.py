import subprocess
import sys

from conftest import ROOT


def run_app(*args, timeout=120):
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_help_lists_every_stage():
    result = run_app("--help")
    assert result.returncode == 0
    for name in ("autoseg", "synthesize", "simulate-ccd", "label-ccd", "train", "segment",
                 "evaluate", "pipeline", "refine"):
        assert name in result.stdout


def test_bad_number_is_a_usage_error_without_traceback():
    result = run_app("synthesize", "--workdir", "x", "--count", "-3")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "-3" in result.stderr


def test_the_word_bundled_names_the_model_that_comes_with_the_application():
    sys.path.insert(0, str(ROOT))
    from app import build_parser
    from core.model_folder import BUNDLED_MODEL

    parser = build_parser()
    args = parser.parse_args(["segment", "--model", "bundled", "--images", "p", "--out", "o"])
    assert args.model == str(BUNDLED_MODEL)
    args = parser.parse_args(["refine", "--images", "p", "--workdir", "w", "--model", "m", "--start-from", "bundled"])
    assert args.start_from == str(BUNDLED_MODEL) and args.model == "m"
    assert parser.parse_args(["segment", "--model", "bundled2", "--images", "p", "--out", "o"]).model == "bundled2"
