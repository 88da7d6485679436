"""Run a real supervisor (``python -m wats.supervisor``) in a subprocess for integration tests.

Each run gets a short private folder under /tmp (ipc:// socket paths must stay short), a config
with fast timing (heartbeat 0.2 s) and only the test's workers. Waiting is always polling a
condition against a deadline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import zmq

from wats.config.models import DEFAULT_WORKERS
from wats.protocol.addresses import read_endpoints
from wats.protocol.bus import ControlClient, Reply, Subscriber

T = TypeVar("T")

FAST_SUPERVISOR: dict[str, Any] = {
    "heartbeat_interval_seconds": 0.2,
    "heartbeat_misses": 3,
    "heartbeat_grace_seconds": 0.2,
    "stop_grace_seconds": 2.0,
    "backoff_first_seconds": 0.0,
    "backoff_base_seconds": 0.1,
    "backoff_max_seconds": 1.0,
    "flap_max_restarts": 50,
    "flap_window_seconds": 30.0,
    "flap_cooldown_seconds": 30.0,
    "orphan_timeout_seconds": 1.0,
    "request_timeout_seconds": 2.0,
}


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def write_config(
    root: Path, workers: dict[str, dict[str, Any]], supervisor: dict[str, Any] | None = None
) -> Path:
    """A config file with only ``workers`` (every built-in disabled) and fast timing."""
    lines = ["[instance]", 'name = "t"', "", "[supervisor]"]
    for key, value in {**FAST_SUPERVISOR, **(supervisor or {})}.items():
        lines.append(f"{key} = {_toml_value(value)}")
    for name in DEFAULT_WORKERS:
        lines += ["", f"[workers.{name}]", "enabled = false"]
    for name, spec in workers.items():
        lines += ["", f"[workers.{name}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in spec.items()]
    lines += [
        "",
        "[logging]",
        'level = "debug"',
        "",
        "[paths]",
        f"data_dir = {_toml_value(str(root / 'data'))}",
        f"runtime_dir = {_toml_value(str(root / 'run'))}",
    ]
    path = root / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Supervised:
    """A running supervisor subprocess and ways to talk to it."""

    root: Path
    config: Path
    proc: subprocess.Popen[bytes]
    ctx: zmq.Context[Any] = field(default_factory=zmq.Context)
    _clients: list[Any] = field(default_factory=list)

    @property
    def runtime_dir(self) -> Path:
        """Where endpoints.json and the sockets live."""
        return self.root / "run"

    @property
    def state_file(self) -> Path:
        """The supervisor's state file."""
        return self.root / "data" / "supervisor-state.json"

    def client(self) -> ControlClient:
        """A fresh control client (one per thread)."""
        client = ControlClient(self.ctx, read_endpoints(self.runtime_dir).control, "test")
        self._clients.append(client)
        return client

    def request(
        self,
        command: str,
        args: dict[str, Any] | None = None,
        target: str | None = None,
        timeout: float = 5.0,
    ) -> Reply:
        """One control request from a throwaway client."""
        client = ControlClient(self.ctx, read_endpoints(self.runtime_dir).control, "test")
        try:
            return client.request(command, args, target=target, timeout=timeout)
        finally:
            client.close()

    def status(self) -> dict[str, Any]:
        """The ``status`` result."""
        reply = self.request("status")
        assert reply.ok, reply.error
        return reply.result  # type: ignore[no-any-return]

    def worker(self, name: str) -> dict[str, Any]:
        """One worker's entry of ``status``."""
        return next(w for w in self.status()["workers"] if w["name"] == name)

    def wait_running(self, name: str, timeout: float = 15.0, not_pid: int | None = None) -> dict:
        """Wait until ``name`` is RUNNING (with a pid other than ``not_pid``); return its entry."""

        def probe() -> dict[str, Any] | None:
            w = self.worker(name)
            ok = w["state"] == "RUNNING" and w["pid"] != not_pid
            return w if ok else None

        return wait_for(probe, timeout, f"worker {name} RUNNING")

    def subscribe(self, prefixes: list[str]) -> Subscriber:
        """A subscriber on the bus (give it a moment: SUB joins are asynchronous)."""
        sub = Subscriber(self.ctx, read_endpoints(self.runtime_dir).events_out, prefixes)
        self._clients.append(sub)
        return sub

    def close(self) -> None:
        """Shut the supervisor down (or kill it) and clean up."""
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.request("shutdown", timeout=2.0)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for client in self._clients:
            client.close()
        self.ctx.term()


def start_process(config: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m wats.supervisor --config config`` (output to a file next to it)."""
    out = open(config.parent / "supervisor.out", "ab")  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "wats.supervisor", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    finally:
        out.close()


def wait_ready(sup: Supervised, timeout: float = 15.0) -> None:
    """Wait until the supervisor answers ``ping`` with its own pid."""

    def probe() -> bool:
        if sup.proc.poll() is not None:
            raise AssertionError(f"supervisor exited with {sup.proc.returncode}: {output(sup)}")
        try:
            reply = sup.request("ping", timeout=0.5)
        except (OSError, ValueError, TimeoutError):
            return False
        return bool(reply.ok and reply.result["pid"] == sup.proc.pid)

    wait_for(probe, timeout, "supervisor ping")


def output(sup: Supervised) -> str:
    """What the supervisor printed (its console log)."""
    path = sup.root / "supervisor.out"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def new_root() -> Path:
    """A short private folder (ipc paths must fit in ~100 bytes)."""
    return Path(tempfile.mkdtemp(prefix="ws", dir="/tmp"))


@contextlib.contextmanager
def supervised(
    workers: dict[str, dict[str, Any]],
    supervisor: dict[str, Any] | None = None,
    root: Path | None = None,
) -> Iterator[Supervised]:
    """Run a supervisor with ``workers`` for the duration of the block."""
    own_root = root is None
    root = root or new_root()
    config = write_config(root, workers, supervisor)
    sup = Supervised(root, config, start_process(config))
    try:
        wait_ready(sup)
        yield sup
    finally:
        sup.close()
        if own_root:
            shutil.rmtree(root, ignore_errors=True)


def alive(pid: int | None) -> bool:
    """Whether ``pid`` is a live (non-zombie) process."""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_quietly(pid: int | None) -> None:
    """Cleanup helper: SIGKILL ``pid`` if it still exists."""
    if pid:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


IDLE = {"target": "wats.workers.testing:IdleWorker"}
