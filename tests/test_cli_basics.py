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
