"""Exceptions that describe a user's mistake, not a program fault."""

import errno


class UserInputError(Exception):
    """Bad input a user can fix: a missing folder, an unreadable photo, an
    absurd number. The message is one sentence meant for the user; the CLI
    prints it on stderr (exit status 2) and the GUI shows it in a message box.
    """


class ImageReadError(UserInputError):
    """A file could not be read as an image; the message names the file."""


class StageCancelled(Exception):
    """Raised by :meth:`core.progress.Progress.check_cancelled` when the user
    pressed Cancel. Stages that can stop cleanly catch it themselves."""


# A full disk, a full quota, a file over the size limit: the user can fix
# these (free some space), so they are told in one line, not a traceback.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def user_error_from(exc: BaseException) -> UserInputError | None:
    """The one-line form of a failure of the computer the user can remedy
    (no space left to write), or None for anything else."""
    if isinstance(exc, OSError) and exc.errno in NO_SPACE:
        where = f" while writing {exc.filename}" if exc.filename else ""
        return UserInputError(f"There is no space left on the disk{where} ({exc.strerror or exc}): free some "
                              "space and run it again; nothing half-written was kept")
    return None


def first_line(error: BaseException | str, *, limit: int = 200) -> str:
    """The first line of an error's message, cut to ``limit`` characters (the
    error's type when it has no message)."""
    text = str(error).strip()
    if not text:
        return type(error).__name__ if isinstance(error, BaseException) else ""
    return text.splitlines()[0][:limit]


def describe_error(error: BaseException, *, limit: int = 300) -> str:
    """``'KeyError: name'``: an unexpected error in one line, for a log or a message box."""
    text = str(error).strip()
    return f"{type(error).__name__}: {first_line(error)}"[:limit] if text else type(error).__name__
