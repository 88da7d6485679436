"""The OS-independent parts of the platform seam: the lock error, process identity, and the
machine-id error and file reader both machine-id implementations share."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import psutil

__all__ = ["LockHeld", "MachineIdUnavailable", "process_is", "read_machine_id_files"]

# An id shorter than this is no id: an empty or truncated file must not become a guessable key.
_MIN_MACHINE_ID_LENGTH = 8


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


class MachineIdUnavailable(RuntimeError):
    """This machine has no readable, stable id, so secrets cannot be bound to it.

    The message names every place looked at, so an operator knows what to provide (in a
    container: mount the host's ``/etc/machine-id`` or set ``WATS_SUPERVISOR_MACHINE_ID_FILE``).
    """


def read_machine_id_files(files: Iterable[Path]) -> str:
    """The first usable id among ``files`` (stripped, lower case), or ``MachineIdUnavailable``.

    Lower case, because the same id is written in upper case by some tools and lower by others;
    the derived key must not change with the spelling.
    """
    tried: list[str] = []
    for path in files:
        try:
            text = Path(path).read_text(encoding="ascii", errors="strict").strip().lower()
        except (OSError, UnicodeError) as exc:
            tried.append(f"{path} ({type(exc).__name__})")
            continue
        if len(text) >= _MIN_MACHINE_ID_LENGTH:
            return text
        tried.append(f"{path} (empty or too short)")
    raise MachineIdUnavailable(
        "no machine id found (looked at: "
        + (", ".join(tried) or "nothing")
        + "); provide one (e.g. run systemd-machine-id-setup, or in a container mount the "
        "host's /etc/machine-id) or point WATS_SUPERVISOR_MACHINE_ID_FILE at a file holding it"
    )
