"""Windows implementation of the platform seam (designed alongside POSIX; not tested here).

Windows has no parent-death signal or subreaper: there the supervisor puts workers in a Job
Object with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, so closing the supervisor's job handle (which
the OS does when it dies) ends the whole tree. The functions below report False so callers fall
back to that and to the supervisor-heartbeat check.
"""

from __future__ import annotations

import msvcrt  # type: ignore[import-not-found]  # Windows only
import os
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from wats.platform._common import LockHeld, MachineIdUnavailable, read_machine_id_files

__all__ = [
    "InstanceLock",
    "ipc_supported",
    "machine_id",
    "make_child_subreaper",
    "set_parent_death_signal",
]

_CRYPTOGRAPHY_KEY = r"SOFTWARE\Microsoft\Cryptography"

# msvcrt locks byte ranges and a locked range cannot be read by others, so the lock sits on a
# byte far past the pid text: readers can still see who holds it.
_LOCK_OFFSET = 1 << 20
_PID_WAIT_SECONDS = 0.5


def set_parent_death_signal(sig: int) -> bool:
    """No such mechanism on Windows (Job Objects cover it); always False."""
    return False


def make_child_subreaper() -> bool:
    """No such mechanism on Windows (Job Objects keep the tree together); always False."""
    return False


def ipc_supported() -> bool:
    """False: the bus uses tcp://127.0.0.1 on Windows."""
    return False


class InstanceLock:
    """A non-blocking, process-exclusive lock on a file, holding the owner's pid.

    ``msvcrt.locking`` locks are released by the OS when the holder's handle closes, including
    when the process dies, so a stale lock is free without pid guessing.
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
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_BINARY, 0o600)
        if not _try_lock(fd):
            pid = _wait_for_pid(fd)
            os.close(fd)
            raise LockHeld(str(self.path), pid)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".ljust(16).encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Clear the pid and drop the lock; a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, b" " * 16)
            os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
        finally:
            os.close(fd)

    @staticmethod
    def holder(path: Path | str) -> int | None:
        """The pid holding the lock at ``path``, or None if it is free (or absent)."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_BINARY)
        except FileNotFoundError:
            return None
        try:
            if _try_lock(fd):
                os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
                return None
            return _wait_for_pid(fd)
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


def _try_lock(fd: int) -> bool:
    os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 16).decode("ascii", "replace").strip()
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
    """A stable id of this machine: ``HKLM\\SOFTWARE\\Microsoft\\Cryptography\\MachineGuid``.

    ``files`` (tests) replaces the registry. The 64-bit registry view is read even from a
    32-bit Python, which would otherwise be redirected to WOW6432Node and miss the value.
    Raises ``MachineIdUnavailable`` when the value is missing or unreadable.
    """
    if files is not None:
        return read_machine_id_files(files)
    import winreg  # type: ignore[import-not-found,unused-ignore]  # Windows only

    try:
        with winreg.OpenKey(
            winreg.HKEY_LOCAL_MACHINE,
            _CRYPTOGRAPHY_KEY,
            0,
            winreg.KEY_READ | winreg.KEY_WOW64_64KEY,
        ) as key:
            value, _kind = winreg.QueryValueEx(key, "MachineGuid")
    except OSError as exc:
        raise MachineIdUnavailable(
            f"no machine id: cannot read HKLM\\{_CRYPTOGRAPHY_KEY}\\MachineGuid ({exc}); "
            "point WATS_SUPERVISOR_MACHINE_ID_FILE at a file holding a stable id"
        ) from None
    text = str(value).strip().lower()
    if not text:
        raise MachineIdUnavailable(
            f"no machine id: HKLM\\{_CRYPTOGRAPHY_KEY}\\MachineGuid is empty"
        )
    return text
