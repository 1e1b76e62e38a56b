"""Reading a JSON file a user may have edited, moved or damaged: whatever is
wrong with it (missing, a folder, unreadable, not JSON, nested past what a
parser follows, the wrong kind of value) becomes one
:class:`UserInputError` naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.errors import UserInputError


def read_json(path: str | os.PathLike, *, what: str = "file"):
    """The value held by the JSON file ``path`` (``what`` names it in messages)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"The {what} does not exist: {path}") from None
    except IsADirectoryError:
        raise UserInputError(f"The {what} is a folder, not a file: {path}") from None
    except PermissionError:
        raise UserInputError(f"The {what} cannot be read (no permission): {path}") from None
    except UnicodeDecodeError:
        raise UserInputError(f"The {what} is not a text file: {path}") from None
    except OSError as exc:
        raise UserInputError(f"The {what} cannot be read: {path} ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise UserInputError(f"The {what} is nested too deeply to be a description of this application: "
                             f"{path}") from None
    except ValueError as exc:
        raise UserInputError(f"The {what} is not valid JSON: {path} ({exc})") from None


def read_json_object(path: str | os.PathLike, *, what: str = "file") -> dict:
    """Like :func:`read_json`, refusing anything but a JSON object (``{...}``)."""
    value = read_json(path, what=what)
    if not isinstance(value, dict):
        raise UserInputError(f"The {what} {path} holds a {type(value).__name__}, not the object ({{...}}) "
                             "this application writes there")
    return value
