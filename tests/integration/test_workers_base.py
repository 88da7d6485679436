"""The worker base, run for real: ``python -m wats.workers`` against a real bus (no supervisor).

Covers heartbeats, control requests, clean stop, orphan detection (heartbeat silence and parent
death) and robustness against garbage on the bus. Timings are test-sized (heartbeat 0.2 s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from tests.support.bus_harness import (
    BusHarness,
    WorkerProcess,
    make_config,
    short_tempdir,
    wait_until,
)
from wats.protocol import topics
from wats.protocol.codec import encode, make_envelope

IDLE = "wats.workers.testing:IdleWorker"


@pytest.fixture
def tmp() -> Iterator[Path]:
    with short_tempdir() as path:
        yield path


@pytest.fixture
def bus(tmp: Path) -> Iterator[BusHarness]:
    with BusHarness(tmp / "run") as harness:
        harness.write_config(make_config(tmp / "data", tmp / "run"))
        yield harness


def test_heartbeat_carries_a_rising_progress_counter(bus: BusHarness) -> None:
    with WorkerProcess(bus, "idle", IDLE) as worker:
        first = worker.wait_ready()
        later = worker.wait_heartbeat(lambda e: e.body["progress"] >= first.body["progress"] + 2)
        assert later.body["pid"] == worker.pid
        assert later.seq > first.seq


def test_worker_announces_its_pid_to_the_control_router(bus: BusHarness) -> None:
    with WorkerProcess(bus, "idle", IDLE) as worker:
        assert bus.wait_hello("idle") == worker.pid


def test_sigterm_stops_the_worker_cleanly_with_exit_code_0(bus: BusHarness) -> None:
    with WorkerProcess(bus, "idle", IDLE) as worker:
        worker.wait_ready()
        assert worker.terminate() == 0
        assert '"worker stopped"' in worker.output()


def test_worker_exits_when_the_supervisor_heartbeat_stops(bus: BusHarness) -> None:
    bus.start_supervisor_heartbeat(0.1)
    with WorkerProcess(bus, "idle", IDLE) as worker:
        worker.wait_ready()
        # Still alive well past the orphan timeout (1 s) while the supervisor beats.
        worker.wait_heartbeat(lambda e: e.body["progress"] >= 8)
        assert worker.alive()
        bus.stop_supervisor_heartbeat()
        assert worker.wait_exit(timeout=5) == 0
        assert "orphaned" in worker.output()


def test_worker_without_supervisor_heartbeats_yet_keeps_running(bus: BusHarness) -> None:
    # Orphan detection arms only after a first supervisor heartbeat: a worker started before the
    # supervisor's first beat must not exit.
    with WorkerProcess(bus, "idle", IDLE) as worker:
        worker.wait_heartbeat(lambda e: e.body["progress"] >= 8)
        assert worker.alive()


_PARENT = """
import os, subprocess, sys
env = dict(os.environ, WATS_SUPERVISOR_PID=str(os.getpid()))
child = subprocess.Popen(sys.argv[1:], env=env, stdin=subprocess.DEVNULL)
print(child.pid, flush=True)
child.wait()
"""


def test_worker_exits_when_its_parent_process_is_killed(bus: BusHarness) -> None:
    # A stand-in supervisor process starts the worker, then is SIGKILLed: the worker must go
    # (PR_SET_PDEATHSIG on Linux, the getppid check elsewhere).
    env = {
        **os.environ,
        "WATS_RUNTIME_DIR": str(bus.runtime_dir),
        "WATS_RUNTIME_CONFIG": str(bus.runtime_dir / "config.json"),
        "WATS_WORKER_ARGS": "{}",
    }
    command = [sys.executable, "-m", "wats.workers", "--name", "idle", "--target", IDLE]
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, *command],
        env=env,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        bus.wait_for(topics.WORKER_HEARTBEAT, lambda e: e.body["pid"] == child_pid)
        parent.kill()
        parent.wait(5)
        wait_until(lambda: not _pid_alive(child_pid), 3.0, f"worker {child_pid} to exit")
    finally:
        parent.kill()
        parent.wait(5)
        if _pid_alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)


def _pid_alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reaps it if it is our (adopted) zombie
    except ChildProcessError:
        waited = 0
    if waited == pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still "exists" until its new parent reaps it
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def test_unknown_command_is_answered_with_an_error_naming_known_commands(bus: BusHarness) -> None:
    with WorkerProcess(bus, "idle", IDLE) as worker:
        worker.wait_ready()
        answer = bus.request("idle", "no.such.command")
        assert not answer.ok
        assert answer.error is not None
        assert answer.error["code"] == "unknown_command"
        assert "worker.info" in answer.error["reason"]


def test_garbage_on_the_bus_does_not_crash_a_worker(bus: BusHarness) -> None:
    bus.start_supervisor_heartbeat(0.1)
    with WorkerProcess(bus, "idle", IDLE) as worker:
        worker.wait_ready()
        beat = topics.SUPERVISOR_HEARTBEAT.encode()
        good = make_envelope(topics.SUPERVISOR_HEARTBEAT, {"pid": 1, "instance": "x"}, "evil", 1)
        wrong_version = msgpack.packb({**good.model_dump(), "v": 99})
        bad_body = make_envelope(topics.SUPERVISOR_HEARTBEAT, {"pid": "one"}, "evil", 2)
        for frames in (
            [beat, b"\xc1\xff not msgpack"],
            [beat],
            [beat, encode(good), b"extra frame"],
            [beat, msgpack.packb([1, 2, 3])],
            [beat, wrong_version],
            [beat, encode(bad_body)],
            [beat, b"\x00" * (2 * 1024 * 1024)],
            [topics.WORKER_HEARTBEAT.encode(), encode(good)],  # topic does not match the type
        ):
            bus.publish_raw(frames)
        bus.send_raw_control("idle", [b"", b"\xc1 garbage"])
        bus.send_raw_control("idle", [b"no delimiter"])
        mark = bus.mark()
        worker.wait_heartbeat(since=mark)
        answer = bus.request("idle", "worker.info")
        assert answer.ok and answer.result["pid"] == worker.pid
        assert worker.alive()


def test_bad_request_body_gets_a_bad_request_reply(bus: BusHarness) -> None:
    with WorkerProcess(bus, "idle", IDLE) as worker:
        worker.wait_ready()
        request = make_envelope(topics.CONTROL_REQUEST, {"command": 42}, "cli:test", 0)
        bus.send_raw_control("idle", [b"", encode(request)])
        answer = bus.request("idle", "worker.info")
        assert answer.ok
        assert worker.alive()


def test_unknown_target_exits_with_usage_error(bus: BusHarness) -> None:
    with WorkerProcess(bus, "nope", "wats.workers.testing:NoSuchWorker") as worker:
        assert worker.wait_exit() == 2
        assert "cannot load worker" in worker.output()


def test_a_worker_failing_in_setup_exits_3_as_a_start_failure_with_its_traceback_logged(
    bus: BusHarness,
) -> None:
    # The family worker cannot run python from a missing interpreter path; simpler: a bad arg.
    with WorkerProcess(
        bus, "crashy", "wats.workers.testing:CrashingWorker", args={"after_seconds": "soon"}
    ) as worker:
        assert worker.wait_exit() == 3  # it never started: a start failure, with its reason
        note = json.loads((bus.runtime_dir / "crashy.start-failure.json").read_text())
        assert note["reason"] == "start_failed" and "after_seconds" in note["message"]
        output = worker.output()
        assert "worker failed" in output
        assert "after_seconds" in output
        record = json.loads(next(line for line in output.splitlines() if "worker failed" in line))
        assert "Traceback" in record.get("exception", "")
