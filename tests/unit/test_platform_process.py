"""Process seams: identity by pid + create time, parent-death signal, child subreaper, IPC."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from wats.platform import ipc_supported, process_is

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_until_gone(pid: int, deadline_seconds: float) -> bool:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.02)
    return _gone(pid)


def test_process_is_true_for_a_live_pid_with_its_create_time() -> None:
    me = psutil.Process()
    assert process_is(me.pid, me.create_time())


def test_process_is_false_when_the_create_time_differs_as_for_a_reused_pid() -> None:
    me = psutil.Process()
    assert not process_is(me.pid, me.create_time() - 5.0)


def test_process_is_false_for_an_exited_process_and_nonsense_pids() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    created = psutil.Process(child.pid).create_time()
    child.wait(timeout=30)
    assert not process_is(child.pid, created)
    assert not process_is(0, created)
    assert not process_is(-1, created)


def test_ipc_is_supported_on_posix() -> None:
    assert ipc_supported() is (os.name != "nt")


_PDEATH_MIDDLE = textwrap.dedent(
    """
    import subprocess, sys
    code = (
        "import signal, sys, time\\n"
        "from wats.platform import set_parent_death_signal\\n"
        "print(set_parent_death_signal(signal.SIGKILL), flush=True)\\n"
        "time.sleep(60)\\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    armed = child.stdout.readline().strip()
    print(child.pid, armed, flush=True)
    sys.stdin.readline()
    """
)


@linux_only
def test_child_with_parent_death_signal_dies_with_its_parent() -> None:
    middle = subprocess.Popen(
        [sys.executable, "-c", _PDEATH_MIDDLE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert middle.stdout is not None
    pid_text, armed = middle.stdout.readline().split()
    grandchild = int(pid_text)
    try:
        assert armed == "True"
        middle.kill()
        middle.wait(timeout=10)
        assert _wait_until_gone(grandchild, 5.0)
    finally:
        if not _gone(grandchild):
            os.kill(grandchild, 9)


_SUBREAPER = textwrap.dedent(
    """
    import os, subprocess, sys
    from wats.platform import make_child_subreaper
    ok = make_child_subreaper()
    # the child starts a grandchild and exits at once, orphaning it
    code = (
        "import subprocess, sys\\n"
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],\\n"
        "    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\\n"
        "print(g.pid, flush=True)\\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    grandchild = int(out.stdout.strip())
    import psutil
    print(ok, grandchild, psutil.Process(grandchild).ppid() == os.getpid(), flush=True)
    psutil.Process(grandchild).kill()
    os.waitpid(grandchild, 0)
    """
)


@linux_only
def test_subreaper_adopts_an_orphaned_grandchild() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SUBREAPER], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    ok, _, adopted = result.stdout.split()
    assert ok == "True" and adopted == "True"
