"""Running a stage in a child process, for the stages that use TensorFlow.

Importing TensorFlow holds Python's global interpreter lock for seconds at
a time (loading its native libraries), and so does tracing a model: in a
thread of the GUI process that freezes the window. In a child process it
cannot. The child runs the same stage function; its progress, log lines
and per-epoch metrics come back through a pipe and are replayed on the
parent's :class:`core.progress.Progress`, and Cancel is passed on through
a shared event, so for the caller it behaves like a direct call.

No Qt here: the child imports this module and the stage's, nothing else.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Callable

from core.errors import StageCancelled, UserInputError, describe_error, user_error_from
from core.progress import Progress


class ChildFailed(Exception):
    """The stage failed in the child with an unexpected error; ``details``
    holds the child's traceback."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


# After Cancel, a child that says it can be stopped at once (inside a
# training batch, loading TensorFlow) is ended after this long, rather than
# waiting for the end of a batch that may take seconds.
CANCEL_GRACE_S = 0.1


class _PipeProgress(Progress):
    """The child's progress: forwards everything to the parent."""

    def __init__(self, conn, cancel_event, interruptible=None) -> None:
        super().__init__()
        self._interruptible = interruptible
        self._conn = conn
        # The shared event is the cancel flag itself, so that the sub-stage
        # progress objects of a composite stage (core.progress.SubProgress
        # shares its parent's flag) see a Cancel pressed in the parent too.
        self._cancel = cancel_event

    def on_update(self, done: int, total: int, message: str) -> None:
        self._conn.send(("update", done, total, message))

    def on_log(self, text: str) -> None:
        self._conn.send(("log", text))

    def epoch_end(self, epoch: int, metrics: dict) -> None:
        self._conn.send(("epoch", int(epoch), {k: v for k, v in dict(metrics).items()
                                               if isinstance(v, (int, float, str))}))

    def on_interruptible(self, interruptible: bool) -> None:
        if self._interruptible is not None:
            self._interruptible.value = int(interruptible)

    def ends_at_once(self) -> bool:
        return self._interruptible is not None


def _child_main(conn, cancel_event, fn: Callable, args: tuple, kwargs: dict, interruptible=None) -> None:
    progress = _PipeProgress(conn, cancel_event, interruptible)
    try:
        if not getattr(fn, "tensorflow_where_needed", False):  # (segment: see gui.stages.segment_job)
            from core.quiet_tf import import_tensorflow

            progress.update(0, 0, "loading TensorFlow")
            progress.set_interruptible(True)  # nothing is written while TensorFlow loads
            import_tensorflow()
            progress.set_interruptible(False)
        result = fn(*args, progress=progress, **kwargs)
        message = ("done", result)
    except UserInputError as exc:
        message = ("failed", "input", str(exc), "")
    except StageCancelled:
        message = ("failed", "cancelled", "", "")
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which shows it
        mistake = user_error_from(exc)
        message = (("failed", "input", str(mistake), "") if mistake is not None
                   else ("failed", "error", describe_error(exc), traceback.format_exc()))
    try:
        conn.send(message)
    except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
        conn.send(("failed", "error", f"the result could not be sent back ({describe_error(exc)})",
                   traceback.format_exc()))
    conn.close()


def run_in_child(fn: Callable, args: tuple, kwargs: dict, progress: Progress, *, poll_s: float = 0.05):
    """Run ``fn(*args, progress=..., **kwargs)`` in a fresh child process.

    ``fn`` must be a module-level function and its arguments and result
    picklable. Progress, log lines and ``progress.epoch_end`` calls are
    replayed on ``progress``; ``progress.cancelled`` is passed on.

    After a cancel, a child that says it can be stopped at once (see
    :meth:`core.progress.Progress.set_interruptible`) is ended after
    ``CANCEL_GRACE_S`` instead of being waited for: a training batch can
    take seconds on a small machine.

    Raises
    ------
    UserInputError, StageCancelled
        As raised by the stage in the child (also when the child was ended
        on a cancel).
    ChildFailed
        For any other error, or when the child died (killed, out of memory).
    """
    ctx = multiprocessing.get_context("spawn")  # fork is unsafe in a threaded Qt process
    receiver, sender = ctx.Pipe(duplex=False)
    cancel_event = ctx.Event()
    interruptible = ctx.Value("b", 0, lock=False)
    child = ctx.Process(target=_child_main, args=(sender, cancel_event, fn, args, kwargs, interruptible),
                        daemon=True, name=f"segloop-{getattr(fn, '__name__', 'stage')}")
    child.start()
    sender.close()
    outcome = None
    cancelled_at = None
    try:
        while outcome is None:
            if progress.cancelled and not cancel_event.is_set():
                cancel_event.set()
                cancelled_at = time.monotonic()
            if (cancelled_at is not None and interruptible.value
                    and time.monotonic() - cancelled_at >= CANCEL_GRACE_S):
                child.terminate()
                outcome = ("failed", "cancelled", "", "")
                break
            if receiver.poll(poll_s):
                try:
                    message = receiver.recv()
                except EOFError:
                    break
                kind = message[0]
                if kind == "update":
                    progress.update(*message[1:])
                elif kind == "log":
                    progress.log(message[1])
                elif kind == "epoch":
                    if hasattr(progress, "epoch_end"):
                        progress.epoch_end(message[1], message[2])
                else:
                    outcome = message
            elif not child.is_alive() and not receiver.poll(0):
                break
    finally:
        if outcome is None and child.is_alive():
            child.terminate()
        child.join(timeout=60)
        receiver.close()
    if outcome is None:
        raise ChildFailed(f"the stage's process ended unexpectedly (exit status {child.exitcode})")
    if outcome[0] == "done":
        return outcome[1]
    _, kind, text, details = outcome
    if kind == "input":
        raise UserInputError(text)
    if kind == "cancelled":
        raise StageCancelled("cancelled by the user")
    raise ChildFailed(text, details)
