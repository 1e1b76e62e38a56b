"""Exceptions that describe a user's mistake, not a program fault."""


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
