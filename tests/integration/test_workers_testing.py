"""The scripted test workers behave exactly as the supervisor's tests rely on."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

import psutil
import pytest

from tests.support.bus_harness import (
    BusHarness,
    WorkerProcess,
    make_config,
    short_tempdir,
    wait_until,
)

TESTING = "wats.workers.testing"


@pytest.fixture
def bus() -> Iterator[BusHarness]:
    with short_tempdir() as tmp, BusHarness(tmp / "run") as harness:
        harness.write_config(make_config(tmp / "data", tmp / "run"))
        yield harness


def test_crashing_worker_exits_with_the_given_code_after_the_given_time(bus: BusHarness) -> None:
    args = {"after_seconds": 0.3, "exit_code": 7}
    with WorkerProcess(bus, "crashy", f"{TESTING}:CrashingWorker", args=args) as worker:
        ready = time.monotonic()
        worker.wait_ready()
        assert worker.wait_exit() == 7
        assert time.monotonic() - ready >= 0.2


def test_hanging_worker_stops_heartbeating_but_stays_alive(bus: BusHarness) -> None:
    with WorkerProcess(
        bus, "hangy", f"{TESTING}:HangingWorker", args={"after_seconds": 0.3}
    ) as worker:
        worker.wait_ready()
        last = worker.wait_heartbeat(lambda e: e.body["progress"] >= 1)
        mark = bus.mark()
        # Five heartbeat intervals of silence, measured by its own stopped heartbeats.
        with pytest.raises(AssertionError):
            worker.wait_heartbeat(since=mark, timeout=1.0)
        assert worker.alive()
        assert last.body["pid"] == worker.pid
        # SIGTERM cannot end a stuck loop: only SIGKILL does.
        worker.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        with pytest.raises(AssertionError):
            worker.wait_exit(timeout=0.5)
        worker.kill()
        assert worker.process.returncode == -signal.SIGKILL  # type: ignore[union-attr]


def test_family_worker_reports_a_child_and_a_setsid_grandchild(bus: BusHarness) -> None:
    pids: list[int] = []
    try:
        with WorkerProcess(bus, "family", f"{TESTING}:FamilyWorker") as worker:
            beat = worker.wait_ready()
            child, grandchild = (
                beat.body["detail"]["child_pid"],
                beat.body["detail"]["grandchild_pid"],
            )
            pids = [child, grandchild]
            assert psutil.Process(child).ppid() == worker.pid
            assert psutil.Process(grandchild).ppid() == child
            assert os.getsid(grandchild) == grandchild != os.getsid(worker.pid)
            # The worker leaves them behind on a clean stop: only a tree kill finds them.
            assert worker.terminate() == 0
            assert psutil.pid_exists(child) and psutil.pid_exists(grandchild)
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not any(_running(pid) for pid in pids), 5.0, "family to be gone")


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_echo_worker_answers_with_the_request_args(bus: BusHarness) -> None:
    with WorkerProcess(bus, "echo", f"{TESTING}:EchoWorker") as worker:
        worker.wait_ready()
        answer = bus.request("echo", "echo", {"x": 1, "text": "hi"})
        assert answer.ok and answer.result == {"x": 1, "text": "hi"}


def test_echo_worker_answers_concurrent_slow_requests_while_heartbeating(bus: BusHarness) -> None:
    with WorkerProcess(bus, "echo", f"{TESTING}:EchoWorker", args={"delay": 0.6}) as worker:
        worker.wait_ready()
        mark = bus.mark()
        started = time.monotonic()
        answers = bus.request_many("echo", [("echo", {"i": i}) for i in range(4)])
        elapsed = time.monotonic() - started
        assert [a.result for a in answers] == [{"i": i} for i in range(4)]
        assert elapsed < 4 * 0.6  # served concurrently, not one after another
        beats = bus.select("worker.heartbeat", src="echo", since=mark)
        assert len(beats) >= 2  # the slow answers did not stop the heartbeat


def test_echo_fail_answers_with_the_requested_error(bus: BusHarness) -> None:
    with WorkerProcess(bus, "echo", f"{TESTING}:EchoWorker") as worker:
        worker.wait_ready()
        answer = bus.request("echo", "echo.fail", {"code": "timeout", "reason": "slow"})
        assert not answer.ok
        assert answer.error == {"code": "timeout", "reason": "slow"}


def test_idle_worker_is_ready_at_once_and_stops_on_sigterm(bus: BusHarness) -> None:
    with WorkerProcess(bus, "idle", f"{TESTING}:IdleWorker") as worker:
        assert worker.wait_ready().body["ready"] is True
        assert worker.terminate() == 0
