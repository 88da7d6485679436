"""``events`` and ``monitor`` against a real supervisor with real workers, as subprocesses.

The supervisor runs with a 0.2 s heartbeat, its runtime dir (the ipc sockets) under a short /tmp
folder and ``server.url`` pointing at an in-process embedded server, so no worker needs a fixed
port. Everything is awaited by polling with deadlines.
"""

from __future__ import annotations

import json
import os
import pty
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wats.server.testing import EmbeddedServer

pytestmark = pytest.mark.timeout(60)

CLI = [sys.executable, "-c", "from wats.cli.main import app; app()"]
TOKEN_ENV = "WATS_EVENTS_TEST_TOKEN"


@dataclass
class Instance:
    """A running supervisor: its config file, runtime dir and process."""

    config: Path
    runtime_dir: Path
    process: subprocess.Popen[str]
    env: dict[str, str]


class Lines:
    """Reads a subprocess's stdout line by line in a thread, so tests can wait with a deadline."""

    def __init__(self, stream: Any) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, match: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if match(line):
                return line
        tail = "\n".join(self.seen[-20:])
        raise AssertionError(f"no {what} within {timeout} s; last lines:\n{tail}")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)  # polling interval of a deadline loop, not synchronisation by sleeping
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def write_config(folder: Path, runtime_dir: Path, server_url: str) -> Path:
    config = folder / "station.toml"
    config.write_text(
        f"""
[instance]
name = "events-test"

[server]
url = "{server_url}"
token_env = "{TOKEN_ENV}"

[supervisor]
heartbeat_interval_seconds = 0.2
heartbeat_misses = 3
heartbeat_grace_seconds = 0.4
stop_grace_seconds = 2.0
orphan_timeout_seconds = 2.0
request_timeout_seconds = 1.0

[workers.sync]
enabled = false

[workers.idle]
target = "wats.workers.testing:IdleWorker"

[paths]
data_dir = "{folder / "data"}"
runtime_dir = "{runtime_dir}"
""",
        encoding="utf-8",
    )
    return config


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    """A supervisor (health + idle workers) delivering to an embedded server, stopped after."""
    runtime_dir = Path(tempfile.mkdtemp(prefix="wev-", dir="/tmp"))
    with EmbeddedServer(tmp_path / "server") as server:
        config = write_config(tmp_path, runtime_dir, server.url)
        env = {**os.environ, TOKEN_ENV: server.token, "COLUMNS": "160"}
        process = subprocess.Popen(
            [sys.executable, "-m", "wats.supervisor", "--config", str(config), "--quiet"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(
                lambda: (runtime_dir / "endpoints.json").exists() or process.poll() is not None,
                20,
                "the supervisor's endpoints.json",
            )
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            yield Instance(config, runtime_dir, process, env)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            shutil.rmtree(runtime_dir, ignore_errors=True)


def start_cli(instance: Instance, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args, "--config", str(instance.config)],
        env=instance.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def is_event(event_type: str, **body: Any) -> Callable[[str], bool]:
    def match(line: str) -> bool:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return False
        return record["type"] == event_type and all(
            record["body"].get(k) == v for k, v in body.items()
        )

    return match


def test_events_json_shows_heartbeats_and_a_killed_worker_exit_and_restart(
    instance: Instance,
) -> None:
    events = start_cli(instance, "events", "--json", "--all")
    quiet = start_cli(instance, "events", "--json")  # heartbeats hidden without --all
    try:
        lines = Lines(events.stdout)
        quiet_lines = Lines(quiet.stdout)
        quiet_notes = Lines(quiet.stderr)
        heartbeat = json.loads(
            lines.wait_for(is_event("worker.heartbeat", worker="idle"), 20, "idle heartbeat")
        )
        lines.wait_for(is_event("supervisor.heartbeat"), 5, "supervisor heartbeat")
        old_pid = heartbeat["body"]["pid"]
        assert heartbeat["src"] and heartbeat["seq"] >= 1 and heartbeat["v"] == 1
        # the second one says it listens, and why a quiet instance prints little, once attached
        quiet_notes.wait_for(lambda s: "heartbeats hidden: --all shows them" in s, 20, "note")

        os.kill(old_pid, signal.SIGKILL)
        exited = json.loads(
            lines.wait_for(is_event("supervisor.worker.exited", worker="idle"), 10, "exit event")
        )
        assert exited["body"]["pid"] == old_pid and exited["body"]["signal"] == signal.SIGKILL
        started = json.loads(
            lines.wait_for(is_event("supervisor.worker.started", worker="idle"), 10, "restart")
        )
        assert started["body"]["pid"] != old_pid
        assert all(json.loads(line) for line in lines.seen)  # nothing but JSON on stdout
        quiet_lines.wait_for(is_event("supervisor.worker.started", worker="idle"), 10, "restart")
        assert quiet_lines.seen and not any("heartbeat" in line for line in quiet_lines.seen)
    finally:
        for process in (events, quiet):
            process.send_signal(signal.SIGTERM)
        code = events.wait(timeout=10)
        quiet_code = quiet.wait(timeout=10)
    assert code == 0, events.stderr.read() if events.stderr else ""
    assert quiet_code == 0, "\n".join(quiet_notes.seen)


def test_events_topic_filter_and_text_lines(instance: Instance) -> None:
    events = start_cli(instance, "events", "--topic", "worker.", "--count", "3")
    lines = Lines(events.stdout)
    for _ in range(3):
        line = lines.wait_for(lambda s: "worker.heartbeat" in s, 20, "heartbeat line")
        assert "pid=" in line and "progress=" in line
    assert events.wait(timeout=10) == 0
    assert not any("supervisor.heartbeat" in s for s in lines.seen)


def test_monitor_once_prints_every_worker_and_exits(instance: Instance) -> None:
    def snapshot_shows_running_workers() -> bool:
        result = subprocess.run(
            [*CLI, "monitor", "--once", "--config", str(instance.config)],
            env=instance.env, capture_output=True, text=True, timeout=20,
        )
        assert result.returncode == 0, result.stderr
        snapshot.append(result.stdout)
        rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
        return "health" in rows and "RUNNING" in rows.get("idle", "")

    snapshot: list[str] = []
    wait_until(snapshot_shows_running_workers, 30, "a snapshot listing idle RUNNING and health")
    screen = snapshot[-1]
    assert "instance events-test" in screen
    assert "server: ONLINE" in screen or "server: unknown" in screen


def test_monitor_draws_live_under_a_terminal_and_stops_after_its_duration(
    instance: Instance,
) -> None:
    primary, secondary = pty.openpty()
    monitor = subprocess.Popen(
        [*CLI, "monitor", "--duration", "2", "--config", str(instance.config)],
        env={**instance.env, "TERM": "xterm-256color"},
        stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True,
    )
    os.close(secondary)
    output = b""
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # the terminal closes when the monitor exits
                    break
                if not chunk:
                    break
                output += chunk
            elif monitor.poll() is not None:
                break
        assert monitor.wait(timeout=10) == 0
    finally:
        os.close(primary)
        if monitor.poll() is None:
            monitor.kill()
    text = output.decode(errors="replace")
    assert "Workers" in text and "health" in text and "idle" in text
    assert "\x1b[" in text  # drawn with terminal escapes, i.e. live


def test_events_without_a_running_supervisor_says_how_to_start_one(tmp_path: Path) -> None:
    runtime_dir = Path(tempfile.mkdtemp(prefix="wev-", dir="/tmp"))
    try:
        config = write_config(tmp_path, runtime_dir, "http://127.0.0.1:9")
        result = subprocess.run(
            [*CLI, "events", "--config", str(config)], capture_output=True, text=True, timeout=20
        )
    finally:
        shutil.rmtree(runtime_dir, ignore_errors=True)
    assert result.returncode == 1
    assert "instance 'events-test' is not running" in result.stderr
    assert f"wats-supervisor start --config {config}" in result.stderr


def test_commands_against_a_dead_supervisor_warn_instead_of_hanging(tmp_path: Path) -> None:
    from wats.protocol.addresses import BusAddresses, write_endpoints

    runtime_dir = Path(tempfile.mkdtemp(prefix="wev-", dir="/tmp"))
    try:
        # What a SIGKILLed supervisor leaves behind: endpoints of sockets nobody serves.
        write_endpoints(runtime_dir, BusAddresses.for_runtime_dir(runtime_dir, ipc=True))
        config = write_config(tmp_path, runtime_dir, "http://127.0.0.1:9")
        events = subprocess.run(
            [*CLI, "events", "--duration", "0.5", "--config", str(config)],
            capture_output=True, text=True, timeout=20,
        )
        snapshot = subprocess.run(
            [*CLI, "monitor", "--once", "--config", str(config)],
            capture_output=True, text=True, timeout=20, env={**os.environ, "COLUMNS": "120"},
        )
    finally:
        shutil.rmtree(runtime_dir, ignore_errors=True)
    assert events.returncode == 0
    assert "warning: instance 'events-test'" in events.stderr and "'ping'" in events.stderr
    assert snapshot.returncode == 1
    assert "'status'" in snapshot.stdout and "no workers reported yet" in snapshot.stdout
