"""The network's forward pass on the processor through ONNX Runtime.

Training stays in TensorFlow; for prediction on a computer without a
graphics card, the trained Keras model is converted once per process (in
memory, nothing is written into the model folder) and run by ONNX Runtime,
which does the same arithmetic faster on these processors. Before it is
used, its output on a test input is compared with the Keras model's: where
the two differ by more than ``TOLERANCE`` (or the conversion fails, or the
packages are missing) the Keras model is used as before, and the reason is
kept in the model's ``onnx_refused`` for the log. A converted model is kept
in the user's cache folder (``~/.cache/segloop/onnx``, or
``SEGLOOP_CACHE_DIR``) under the hash of its files, so that the next run
skips the conversion (a few seconds).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

TOLERANCE = 1e-4  # largest difference of a class probability from the Keras model's


class OnnxNetwork:
    """A Keras model's forward pass through ONNX Runtime: ``predict_on_batch``
    as the Keras model has it (NHWC float32 in, class probabilities out)."""

    def __init__(self, session, keras_model) -> None:
        self.session = session
        self.keras_model = keras_model
        self.input_name = session.get_inputs()[0].name
        self.outputs = keras_model.outputs

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})[0]


def cache_folder() -> Path:
    """Where converted models are kept between runs."""
    given = os.environ.get("SEGLOOP_CACHE_DIR")
    if given:
        return Path(given) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "segloop" / "onnx"


def prediction_network(model, *, threads: int = 0, key: str | None = None):
    """``model`` as it is best run for prediction here: an :class:`OnnxNetwork`
    on a computer without a graphics card where the conversion succeeds
    and agrees with the model, else ``model`` itself. ``SEGLOOP_RUNTIME=tensorflow``
    keeps the Keras model. ``key`` (a hash of the model folder's files)
    names the converted model in the cache folder."""
    if os.environ.get("SEGLOOP_RUNTIME", "auto").lower() == "tensorflow":
        return model
    from core.quiet_tf import import_tensorflow

    tf = import_tensorflow()
    if tf.config.list_physical_devices("GPU"):
        return model
    try:
        return _converted(model, threads, key)
    except Exception as exc:  # noqa: BLE001 - any failure of the conversion: TensorFlow as before
        refused = getattr(model, "onnx_refused", None)
        if refused is None:
            from core.errors import describe_error

            try:
                model.onnx_refused = describe_error(exc)
            except AttributeError:
                pass
        return model


def _converted(model, threads: int, key: str | None) -> OnnxNetwork:
    import onnxruntime

    cached = cache_folder() / f"{key}.onnx" if key else None
    if cached is not None and cached.is_file():
        data = cached.read_bytes()
    else:
        data = _convert(model)
        if cached is not None:
            from core.atomic import atomic_path

            with contextlib.suppress(OSError), atomic_path(cached) as tmp:  # no cache: converted again next time
                tmp.write_bytes(data)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(threads) if threads else 0
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    network = OnnxNetwork(session, model)
    channels = int(model.inputs[0].shape[-1] or 1)
    probe = np.random.default_rng(0).random((2, 64, 96, channels), np.float32)
    difference = float(np.max(np.abs(network.predict_on_batch(probe) - np.asarray(model.predict_on_batch(probe)))))
    if not difference <= TOLERANCE:
        raise ValueError(f"ONNX Runtime's output differs from the model's by {difference:.2g}")
    return network


def _convert(model) -> bytes:
    import tf2onnx

    from core.quiet_tf import import_tensorflow

    tf = import_tensorflow()
    channels = int(model.inputs[0].shape[-1] or 1)
    signature = (tf.TensorSpec((None, None, None, channels), tf.float32, name="photo"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=17)
    return proto.SerializeToString()
