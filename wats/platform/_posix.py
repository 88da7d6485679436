"""POSIX implementation of the platform seam (Linux gets the prctl extras)."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from wats.platform._common import LockHeld, MachineIdUnavailable, read_machine_id_files

__all__ = [
    "MACHINE_ID_FILES",
    "InstanceLock",
    "ipc_supported",
    "machine_id",
    "make_child_subreaper",
    "set_parent_death_signal",
]

# systemd's id first; D-Bus keeps a copy (or the original, on systems without systemd).
MACHINE_ID_FILES: tuple[Path, ...] = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
_IOREG_UUID = re.compile(r'"IOPlatformUUID"\s*=\s*"([0-9A-Fa-f-]+)"')

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
# A holder writes its pid right after taking the lock; give it this long before reporting None.
_PID_WAIT_SECONDS = 0.5


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        result = libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0)
    except (OSError, AttributeError):
        return False
    return result == 0


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only).

    This is what lets a worker die with a SIGKILLed supervisor instead of lingering as an orphan.
    Returns False where the mechanism does not exist; callers then rely on the supervisor's
    heartbeat disappearing.
    """
    return _prctl(_PR_SET_PDEATHSIG, int(sig))


def make_child_subreaper() -> bool:
    """Make this process adopt orphaned descendants (Linux PR_SET_CHILD_SUBREAPER).

    A worker's setsid'd grandchild is then reparented to the supervisor rather than to init, so
    it stays in the supervisor's process tree and is found (and killed) on stop.
    """
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def ipc_supported() -> bool:
    """True if ``ipc://`` (Unix domain socket) endpoints work with the installed libzmq."""
    try:
        import zmq
    except ImportError:  # pragma: no cover - pyzmq is a hard dependency
        return False
    return bool(zmq.has("ipc"))


class InstanceLock:
    """A non-blocking, process-exclusive lock on a file, holding the owner's pid.

    ``flock`` locks belong to the open file and vanish when the holder dies, so a lock left by a
    crashed or SIGKILLed process is simply free: stale-lock takeover needs no pid guessing. The
    file is never deleted (deleting a lock file lets two processes lock different inodes); on
    release its content is cleared instead.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock now or raise ``LockHeld`` naming the holder's pid; never waits."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            pid = _wait_for_pid(fd) if exc.errno in (errno.EWOULDBLOCK, errno.EACCES) else None
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise LockHeld(str(self.path), pid) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            os.fsync(fd)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Clear the pid and drop the lock; a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass  # the lock is dropped below regardless; an old pid in the file is harmless
        finally:
            os.close(fd)

    @staticmethod
    def holder(path: Path | str) -> int | None:
        """The pid holding the lock at ``path``, or None if it is free (or absent).

        Probes by trying the lock, so the answer is about a live holder, not a stale pid.
        """
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return _wait_for_pid(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"InstanceLock({str(self.path)!r}, held={self.held})"


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _wait_for_pid(fd: int) -> int | None:
    deadline = time.monotonic() + _PID_WAIT_SECONDS
    while True:
        pid = _read_pid(fd)
        if pid is not None or time.monotonic() >= deadline:
            return pid
        time.sleep(0.01)


def machine_id(files: Sequence[Path] | None = None) -> str:
    """A stable id of this machine: what secrets at rest are bound to.

    ``files`` (tests, containers) replaces the platform's own source. Otherwise macOS asks
    ``ioreg`` for the IOPlatformUUID and other POSIX systems read ``/etc/machine-id``, then
    ``/var/lib/dbus/machine-id``. Raises ``MachineIdUnavailable`` naming what was tried.
    """
    if files is not None:
        return read_machine_id_files(files)
    if sys.platform == "darwin":  # pragma: no cover - not exercised on the CI platform
        return _darwin_platform_uuid()
    return read_machine_id_files(MACHINE_ID_FILES)


def _darwin_platform_uuid() -> str:  # pragma: no cover - macOS only
    try:
        out = subprocess.run(
            ["ioreg", "-rd1", "-c", "IOPlatformExpertDevice"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise MachineIdUnavailable(
            f"no machine id: 'ioreg -rd1 -c IOPlatformExpertDevice' failed ({exc}); "
            "point WATS_SUPERVISOR_MACHINE_ID_FILE at a file holding a stable id"
        ) from None
    match = _IOREG_UUID.search(out)
    if match is None:
        raise MachineIdUnavailable(
            "no machine id: ioreg printed no IOPlatformUUID; point "
            "WATS_SUPERVISOR_MACHINE_ID_FILE at a file holding a stable id"
        )
    return match.group(1).lower()
