"""What this computer can give a stage: cores and free memory, read before
a stage starts so that a setting it cannot carry (too many worker
processes, too large a training batch) is refused in one line instead of
ending in the kernel's out-of-memory kill."""

from __future__ import annotations

import os


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def available_memory() -> int | None:
    """Bytes of memory free for a new allocation (the kernel's estimate,
    page cache counted as free), or None where it cannot be read."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil missing or the system refuses: no check rather than no stage
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return None


def gigabytes(size: float) -> str:
    return f"{size / 1e9:.1f} GB"
