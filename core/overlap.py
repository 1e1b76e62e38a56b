"""The one rule that keeps a stage's outputs off its inputs.

A stage reads photos, frames, masks or settings and writes results. Before
it writes anything, each place it will write (a file, or a folder it
replaces) is checked against each place it reads, and refused with one
message when it

* *is* an input (``fit-ccd --frames f.fits --out f.fits``),
* *holds* an input (``label-ccd --frames OUT/images --out OUT``), or
* is an image file written *among* the images of an input folder, where the
  next run would read it as one of them.

A results folder inside a photos folder (``--images . --out results``) is
none of these: photo folders are read without their subfolders. Paths are
compared after following symbolic links, so a link does not hide an overlap.

The staged copies of :mod:`core.transaction` apply the rule to every part
they stage; stages that write a single file (``fit-ccd``, ``evaluate``)
call :func:`refuse_overlap` themselves.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from core.errors import UserInputError


def _real(path: str | os.PathLike) -> Path:
    """``path`` with links followed and a FITS unit (``frame.fits[2]``) taken off."""
    from core.fits import split_unit

    file, _unit = split_unit(Path(path))
    return Path(os.path.realpath(os.path.abspath(file)))


def overlap(output: str | os.PathLike, source: str | os.PathLike) -> str | None:
    """How writing ``output`` would touch ``source``: 'same', 'holds'
    (``output`` is a folder holding ``source``), 'among' (``output`` is an
    image file in the folder ``source``, or beside the photo ``source``), or
    None when they are apart."""
    from core.imageio import IMAGE_EXTENSIONS

    out, src = _real(output), _real(source)
    if out == src:
        return "same"
    if src.is_relative_to(out):
        return "holds"
    folder = src if src.is_dir() else src.parent  # a photo given alone: its folder
    if out.parent == folder and out.suffix.lower() in IMAGE_EXTENSIONS:
        return "among"
    return None


def refuse_overlap(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], *,
                   output_kind: str = "the output", input_kind: str = "the input",
                   remedy: str = "choose another place for it") -> None:
    """Raise :class:`UserInputError` when writing ``output`` would touch one
    of ``inputs`` (None entries are skipped), naming both and ``remedy``.
    ``output_kind`` and ``input_kind`` are what the user calls them, with
    their article ("the settings file", "the frames")."""
    for source in inputs:
        if source is None or str(source) == "":
            continue
        how = overlap(output, source)
        said = {"same": f"is {input_kind} {source} itself, which is never overwritten",
                "holds": f"holds {input_kind} {source}, which writing there would replace",
                "among": f"lies among {input_kind} in {source}, where it would be read as one of them"}
        if how is not None:
            raise UserInputError(f"{output_kind[:1].upper()}{output_kind[1:]} {output} {said[how]}: {remedy}")


def refuse_current_folder(output: str | os.PathLike, *, output_kind: str = "the output") -> None:
    """A folder that is replaced as a whole may not be (or hold) the folder
    the command runs in: the terminal would be left in a removed folder."""
    try:
        here = _real(os.getcwd())
    except OSError:  # the current folder was removed: nothing to protect
        return
    if here.is_relative_to(_real(output)):
        raise UserInputError(f"{output_kind[:1].upper()}{output_kind[1:]} {output} is the current folder (or "
                             f"holds it), which writing there would replace: give a folder inside it, e.g. "
                             f"{Path(output) / 'results'}")


def output_path(out: str | os.PathLike, *, output_kind: str = "the output folder") -> Path:
    """``out`` as an absolute path (``.`` names the current folder, whose
    parent is then known), refusing an empty one."""
    if str(out).strip() == "":
        raise UserInputError(f"{output_kind[:1].upper()}{output_kind[1:]} is empty: give a path")
    return Path(os.path.abspath(out))
