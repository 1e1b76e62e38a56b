"""A package's public names, imported when first used: ``import inference``
costs nothing until ``inference.run_segment`` is asked for, so the window
opens and the command line answers ``--help`` without loading what they
do not need (the pattern of scikit-image's lazy loader)."""

from __future__ import annotations

import importlib


def attach(package: str, names: dict[str, list[str]]):
    """``(__getattr__, __dir__, __all__)`` for ``package``, whose public
    ``names`` live in the given modules (module -> names)."""
    where = {name: module for module, listed in names.items() for name in listed}

    def __getattr__(name: str):
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__, sorted(where)
