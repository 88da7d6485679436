"""InstanceLock: one holder at a time, the holder's pid named, a dead holder's lock is free."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wats.platform import InstanceLock, LockHeld

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX implementation under test")

_HOLDER = textwrap.dedent(
    """
    import sys
    from wats.platform import InstanceLock
    lock = InstanceLock(sys.argv[1])
    lock.acquire()
    print("locked", flush=True)
    sys.stdin.readline()
    """
)


def _start_holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_acquired_lock_file_holds_our_pid_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "instance.lock"
    with InstanceLock(path) as lock:
        assert lock.held
        assert path.read_text().strip() == str(os.getpid())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not lock.held
    assert path.read_text() == ""


def test_second_lock_on_same_file_is_refused_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "instance.lock"
    with InstanceLock(path), pytest.raises(LockHeld) as info:
        InstanceLock(path).acquire()
    assert info.value.pid == os.getpid()
    assert str(os.getpid()) in str(info.value) and str(path) in str(info.value)


def test_released_lock_can_be_taken_again(tmp_path: Path) -> None:
    path = tmp_path / "instance.lock"
    first = InstanceLock(path)
    first.acquire()
    first.release()
    first.release()  # idempotent
    with InstanceLock(path) as second:
        assert second.held


def test_lock_held_by_another_process_names_its_pid(tmp_path: Path) -> None:
    path = tmp_path / "instance.lock"
    holder = _start_holder(path)
    try:
        with pytest.raises(LockHeld) as info:
            InstanceLock(path).acquire()
        assert info.value.pid == holder.pid
        assert InstanceLock.holder(path) == holder.pid
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_stale_lock_of_a_sigkilled_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "instance.lock"
    holder = _start_holder(path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert path.read_text().strip() == str(holder.pid)  # the dead holder's pid is still written
    with InstanceLock(path) as lock:
        assert lock.held
        assert path.read_text().strip() == str(os.getpid())


def test_holder_is_none_for_a_free_or_missing_lock(tmp_path: Path) -> None:
    path = tmp_path / "instance.lock"
    assert InstanceLock.holder(path) is None
    with InstanceLock(path):
        pass
    assert InstanceLock.holder(path) is None
    with InstanceLock(path) as lock:
        # probing from the holder's own process still sees the lock as held
        assert InstanceLock.holder(path) == os.getpid()
        assert lock.held


def test_lock_is_not_inherited_by_children_that_outlive_the_release(tmp_path: Path) -> None:
    path = tmp_path / "instance.lock"
    lock = InstanceLock(path)
    lock.acquire()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.readline()"],
        stdin=subprocess.PIPE,
        close_fds=False,
    )
    try:
        lock.release()
        assert InstanceLock.holder(path) is None
    finally:
        child.kill()
        child.wait(timeout=10)
