"""Import TensorFlow without its start-up chatter on the user's terminal.

TensorFlow prints oneDNN and absl notices on stderr while it is imported,
and no environment variable silences them (oneDNN itself must stay on: it
makes training twice as fast). The import runs with stderr captured; lines
that are only that chatter are dropped and anything else is passed on.
"""

from __future__ import annotations

import os
import sys
import tempfile

_CHATTER = (
    "oneDNN custom operations are on",
    "All log messages before absl::InitializeLog()",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
    "Unable to register cu",
    "computation placer already registered",
    "could not find cuda drivers",
    "TF-TRT Warning",
    "cuda_executor",
    "Could not find TensorRT",
)


def import_tensorflow():
    """``import tensorflow`` with the start-up notices filtered out."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. a windowed launcher)
        import tensorflow

        return tensorflow
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import keras  # noqa: F401 - its import prints through TensorFlow too
            import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
    for line in text.splitlines():
        if line.strip() and not any(marker in line for marker in _CHATTER):
            print(line, file=sys.stderr)
    return tensorflow
