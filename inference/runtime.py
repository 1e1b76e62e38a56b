"""The network's forward pass on the processor through ONNX Runtime.

Training stays in TensorFlow; for prediction on a computer without a
graphics card, the trained Keras model is converted once per process (in
memory, nothing is written into the model folder) and run by ONNX Runtime,
which does the same arithmetic faster on these processors. Before it is
used, its output on a test input is compared with the Keras model's: where
the two differ by more than ``TOLERANCE`` (or the conversion fails, or the
packages are missing) the Keras model is used as before, and the reason is
kept in the model's ``onnx_refused`` for the log. A converted model that
agreed is kept in the user's cache folder (``~/.cache/segloop/onnx``, or
``SEGLOOP_CACHE_DIR``) under the hash of the model folder's files: the next
run on a computer without a graphics card takes it from there
(:func:`cached_network`) without loading TensorFlow or the Keras model at
all, which is most of a one-photo run's start (4-11 s).
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

    def __init__(self, session, keras_model=None) -> None:
        self.session = session
        self.keras_model = keras_model  # None where it came from the cache alone
        self.input_name = session.get_inputs()[0].name

    @property
    def classes(self) -> int | None:
        """How many class probabilities the network gives per pixel."""
        last = self.session.get_outputs()[0].shape[-1]
        return last if isinstance(last, int) else None

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})[0]


def cache_folder() -> Path:
    """Where converted models are kept between runs."""
    given = os.environ.get("SEGLOOP_CACHE_DIR")
    if given:
        return Path(given) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "segloop" / "onnx"


def cached_path(key: str) -> Path:
    """Where the conversion of the model whose files hash to ``key`` is kept
    once it agreed with the model (a name earlier versions, which kept a
    conversion before checking it, never wrote)."""
    return cache_folder() / f"{key}.checked.onnx"


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


def cached_network(key: str | None, *, threads: int = 0) -> OnnxNetwork | None:
    """The network kept in the cache folder under ``key`` (a hash of the
    model folder's files), ready without TensorFlow: only a conversion whose
    output agreed with the Keras model's is kept there. None where there is
    none (or it cannot be read), where ``SEGLOOP_RUNTIME=tensorflow``, or
    where the computer may have a graphics card TensorFlow would use."""
    if not key or os.environ.get("SEGLOOP_RUNTIME", "auto").lower() == "tensorflow" or _may_have_gpu():
        return None
    cached = cached_path(key)
    try:
        return OnnxNetwork(_session(cached.read_bytes(), threads)) if cached.is_file() else None
    except Exception:  # noqa: BLE001 - a damaged or foreign file: converted again from the model
        return None


def _may_have_gpu() -> bool:
    """Whether TensorFlow could find a graphics card here (it uses NVIDIA
    cards on Linux only): then it decides, as without a cache."""
    import sys

    if not sys.platform.startswith("linux"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return (gpus.is_dir() and any(gpus.iterdir())) or Path("/dev/nvidia0").exists()


def _session(data: bytes, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(threads) if threads else 0
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _converted(model, threads: int, key: str | None) -> OnnxNetwork:
    cached = cached_path(key) if key else None
    if cached is not None and cached.is_file():
        try:
            return _checked(model, cached.read_bytes(), threads)
        except Exception:  # noqa: BLE001 - damaged, or another model's: never taken from there again
            with contextlib.suppress(OSError):
                cached.unlink()
    data = _convert(model)
    network = _checked(model, data, threads)
    if cached is not None:  # kept only once it agreed, for cached_network
        from core.atomic import atomic_path

        with contextlib.suppress(OSError), atomic_path(cached) as tmp:  # no cache: converted again next time
            tmp.write_bytes(data)
    return network


def _checked(model, data: bytes, threads: int) -> OnnxNetwork:
    """The converted ``data`` as a network, where its output on a test input
    agrees with ``model``'s within ``TOLERANCE`` (else ValueError)."""
    network = OnnxNetwork(_session(data, threads), model)
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
