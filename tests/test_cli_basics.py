import subprocess
import sys

from conftest import ROOT


def run_app(*args, timeout=120):
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


STAGES = ("autoseg", "synthesize", "simulate-ccd", "fit-ccd", "label-ccd", "train", "segment", "evaluate",
          "pipeline", "refine")


def test_every_stage_is_a_command_with_its_own_help():
    sys.path.insert(0, str(ROOT))
    from app import HANDLERS, build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert set(commands) == set(STAGES) == set(HANDLERS)
    for name in STAGES:
        result = run_app(name, "--help")
        assert result.returncode == 0 and result.stdout.startswith(f"usage: app.py {name} "), name


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
