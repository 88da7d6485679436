"""The OS-independent parts of the platform seam: the lock error and process identity."""

from __future__ import annotations

import psutil

__all__ = ["LockHeld", "process_is"]


class LockHeld(RuntimeError):
    """Another live process holds an instance lock.

    Carries the holder's pid (``None`` if it had not yet written it) so the caller can tell the
    user which process to look at instead of a bare "locked".
    """

    def __init__(self, path: str, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "a process that has not written its pid yet"
        super().__init__(f"{path} is locked by {holder}")
        self.path = path
        self.pid = pid


def process_is(pid: int, create_time: float) -> bool:
    """True only if ``pid`` exists now and was created at ``create_time``.

    PIDs are reused; comparing the create time (as psutil reports it, to 10 ms) is what makes it
    safe to kill a pid recorded by an earlier run: a recycled pid belongs to a younger process.
    """
    if pid <= 0:
        return False
    try:
        actual = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ValueError):
        return False
    return abs(actual - create_time) < 0.05
