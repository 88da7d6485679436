"""Start cleanly, or say exactly why not: what ``start`` checks before spawning workers, what a
worker that cannot start shows, and what a start interrupted or stopped leaves behind.

Real processes throughout: the ``wats-supervisor`` CLI and ``python -m wats.supervisor`` in
subprocesses, real sockets holding ports, a real foreign server on the embedded server's port.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.supervisor_harness import (
    IDLE,
    Supervised,
    alive,
    new_root,
    start_process,
    wait_for,
    wait_ready,
    write_config,
)
from wats.protocol import topics
from wats.server.testing import EmbeddedServer

WATS = str(Path(sys.executable).parent / "wats-supervisor")
FAILING = {
    "target": "wats.workers.testing:StartFailingWorker",
    "args": {"message": "the fixture cannot start"},
}


def _cli(*args: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([WATS, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def root() -> Iterator[Path]:
    path = new_root()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def env(root: Path) -> dict[str, str]:
    return {**os.environ, "XDG_DATA_HOME": str(root / "xdg"), "COLUMNS": "200"}


@pytest.fixture
def held_port() -> Iterator[tuple[socket.socket, int]]:
    """A port some other program listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock, sock.getsockname()[1]
    finally:
        sock.close()


def _append(config: Path, text: str) -> Path:
    config.write_text(config.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")
    return config


def _embedded_config(root: Path, port: int, workers: dict[str, dict]) -> Path:
    """Only ``workers`` plus the built-in server worker, the embedded server on ``port``."""
    config = write_config(root, workers)
    text = config.read_text(encoding="utf-8").replace(
        "[workers.server]\nenabled = false", "[workers.server]\nenabled = true"
    )
    config.write_text(text, encoding="utf-8")
    return _append(config, f"[server.embedded]\nport = {port}\n")


def _supervise(config: Path, root: Path) -> Supervised:
    sup = Supervised(root, config, start_process(config))
    wait_ready(sup)
    return sup


# ---- checks before any worker is spawned ---------------------------------------------------


def test_a_taken_port_stops_start_naming_the_port_its_holder_and_the_key(
    root: Path, env: dict[str, str], held_port: tuple[socket.socket, int]
) -> None:
    _, port = held_port
    config = _embedded_config(root, port, {"idle": IDLE})
    result = _cli("start", "--config", str(config), env=env)
    assert result.returncode == 2, result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "server.embedded.port" in result.stderr
    assert f"held by pid {os.getpid()}" in result.stderr  # this test process holds it
    assert "Traceback" not in result.stderr
    assert not (root / "run" / "endpoints.json").exists()  # no supervisor came up


def test_a_missing_watch_folder_is_an_error_naming_it_in_start_and_validate(
    root: Path, env: dict[str, str]
) -> None:
    config = _append(
        write_config(root, {"idle": IDLE}),
        '[[converters]]\nname = "ict"\nconverter = "wsjf"\nwatch_folder = "mnt/ict-out"\n',
    )
    missing = root / "mnt" / "ict-out"
    validated = _cli("config", "validate", "--config", str(config), env=env)
    started = _cli("start", "--config", str(config), env=env)
    # validate refuses what start would refuse (--elsewhere checks the file alone)
    assert validated.returncode == 2, validated.stderr
    assert "error: [[converters]] \"ict\" watch_folder" in validated.stderr
    assert started.returncode == 2, started.stderr
    assert 'error: [[converters]] "ict" watch_folder' in started.stderr
    for result in (validated, started):
        assert f"{missing} does not exist" in result.stderr
        assert "create_watch_folder = true" in result.stderr
    assert not missing.exists()  # never silently created


def test_a_second_start_is_refused_and_a_clean_stop_leaves_no_runtime_files(
    root: Path, env: dict[str, str]
) -> None:
    config = str(write_config(root, {"idle": IDLE}))
    started = _cli("start", "--config", config, "--detach", env=env)
    assert started.returncode == 0, started.stderr
    pid = json.loads(_cli("status", "--config", config, "--json", env=env).stdout)["supervisor"][
        "pid"
    ]
    try:
        runtime = root / "run"
        assert (runtime / "endpoints.json").exists()
        again = _cli("start", "--config", config, "--detach", env=env)
        assert again.returncode == 1
        assert f"already running (supervisor pid {pid})" in again.stderr
        assert "wats-supervisor stop" in again.stderr and "--instance" in again.stderr
        assert _cli("stop", "--config", config, env=env).returncode == 0
        assert not alive(pid)
        assert sorted(p.name for p in runtime.iterdir()) == []
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


# ---- a worker that cannot start ----------------------------------------------------------


def _wait_failed(sup: Supervised, probe: object, name: str) -> dict:
    """Wait (generously: three interpreter starts on a loaded machine) for FAILED; on a
    timeout, say what the supervisor logged about the worker."""
    try:
        return wait_for(probe, 90.0, f"{name} FAILED", interval=0.1)  # type: ignore[arg-type]
    except AssertionError:
        log = sup.root / "data" / "logs" / "supervisor.jsonl"
        lines = [ln for ln in log.read_text(encoding="utf-8").splitlines() if name in ln]
        raise AssertionError(f"{name}: {sup.worker(name)}\n" + "\n".join(lines[-30:])) from None


@pytest.mark.timeout(150)
def test_a_worker_failing_the_same_way_stops_after_three_starts_with_its_reason(
    root: Path, env: dict[str, str]
) -> None:
    config = write_config(root, {"idle": IDLE, "fragile": FAILING})
    sup = _supervise(config, root)
    try:
        events = sup.subscribe([topics.SUPERVISOR_WORKER_FAILED])

        def failed() -> dict | None:
            w = sup.worker("fragile")
            return w if w["state"] == "FAILED" else None

        worker = _wait_failed(sup, failed, "fragile")
        assert worker["failure"] == {
            "reason": "start_failed",
            "message": "the fixture cannot start",
        }
        assert worker["restarts"] == 2  # three starts, then no more
        assert worker["last_exit"]["code"] == 3
        event = events.recv(timeout=5.0)
        assert event is not None and event.body["reason"] == "start_failed"
        assert event.body["message"] == "the fixture cannot start"
        assert sup.worker("idle")["state"] == "RUNNING"  # the others run on

        shown = _cli("status", "--config", str(config), env=env)
        assert "fragile FAILED: the fixture cannot start" in shown.stdout
        # no flapping alarm and no traceback for a known start failure
        log = (root / "data" / "logs" / "supervisor.jsonl").read_text(encoding="utf-8")
        assert "Traceback" not in log and "flapping" not in log
        assert log.count('"worker cannot start"') == 3
    finally:
        sup.close()


@pytest.mark.timeout(150)
def test_the_server_worker_on_a_taken_port_fails_with_port_in_use(
    root: Path, held_port: tuple[socket.socket, int]
) -> None:
    _, port = held_port
    # Named otherwise, so `start`'s own port check (for the `server` worker) lets it run.
    config = _append(
        write_config(root, {"embedded": {"target": "wats.workers.server:ServerWorker"}}),
        f"[server.embedded]\nport = {port}\n",
    )
    sup = _supervise(config, root)
    try:

        def failed() -> dict | None:
            w = sup.worker("embedded")
            return w if w["state"] == "FAILED" else None

        worker = _wait_failed(sup, failed, "embedded")
        assert worker["failure"]["reason"] == "port_in_use"
        message = worker["failure"]["message"]
        assert f"port {port} on 127.0.0.1 in use" in message
        assert f"held by pid {os.getpid()}" in message and "[server.embedded] port" in message
    finally:
        sup.close()


def test_start_detach_that_fails_stops_the_supervisor_it_launched(
    root: Path, env: dict[str, str]
) -> None:
    config = str(write_config(root, {"idle": IDLE, "fragile": FAILING}))
    result = _cli("start", "--config", config, "--detach", env=env)
    assert result.returncode == 1
    assert "error: fragile: the fixture cannot start" in result.stderr
    assert "did not start; stopped it" in result.stderr
    assert "keeps running" not in result.stderr
    gone = _cli("status", "--config", config, env=env)
    assert gone.returncode == 1 and "not running" in gone.stderr


# ---- health: only our own server is ours -------------------------------------------------


def test_health_does_not_take_a_foreign_server_on_the_embedded_port_for_ours(
    root: Path,
) -> None:
    with EmbeddedServer(root / "foreign") as foreign:
        # The embedded server is configured on the foreign server's port; this instance runs no
        # server worker of its own, so whatever answers there is somebody else's.
        config = _append(
            write_config(root, {"health": {"enabled": True}}),
            f"[server.embedded]\nport = {foreign.port}\n\n[health]\ninterval_seconds = 0.3\n",
        )
        text = config.read_text(encoding="utf-8").replace("[workers.health]\nenabled = false\n", "")
        config.write_text(text, encoding="utf-8")
        sup = _supervise(config, root)
        try:

            def connection() -> dict | None:
                return sup.status()["connection"]

            status = wait_for(connection, 20.0, "a connection.status from health")
            assert status["status"] == "OFFLINE"
            assert "not as this instance's embedded server" in status["error"]
            assert "credentials refused" not in status["error"]
        finally:
            sup.close()


# ---- Ctrl-C ----------------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["starting", "running"])
def test_ctrl_c_on_a_foreground_start_prints_one_line_per_worker_and_no_traceback(
    root: Path, env: dict[str, str], when: str
) -> None:
    path = write_config(root, {"a": IDLE, "b": IDLE, "c": IDLE})
    # The console as a user has it (the harness logs at debug level).
    text = path.read_text(encoding="utf-8").replace('level = "debug"', 'level = "info"')
    path.write_text(text, encoding="utf-8")
    config = str(path)
    proc = subprocess.Popen(
        [WATS, "start", "--config", config],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # a terminal's foreground group: Ctrl-C signals all of it
    )
    try:

        def ready() -> bool:
            if not (root / "run" / "endpoints.json").exists():
                return False
            if when == "starting":
                return True  # workers are being spawned right now
            shown = _cli("status", "--config", config, "--json", env=env)
            workers = json.loads(shown.stdout)["workers"] if shown.returncode == 0 else []
            return len(workers) == 3 and all(w["ready"] for w in workers)

        wait_for(ready, 30.0, f"the supervisor {when}", interval=0.05)
        os.killpg(proc.pid, signal.SIGINT)  # as the terminal does: the whole process group
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    text = out.decode("utf-8", errors="replace")
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    if when == "starting" and "interrupted before any worker was started" in text:
        assert proc.returncode == 0, text  # Ctrl-C while the bus was being bound
        return
    assert proc.returncode == 0, text
    assert "shutdown requested" in text
    after_ctrl_c = text.split("shutdown requested", 1)[1]
    for worker in ("a", "b", "c"):
        lines = [ln for ln in after_ctrl_c.splitlines() if f"worker={worker}" in ln]
        assert len(lines) <= 1, lines


def test_a_missing_watch_folder_is_created_where_the_converter_asks_for_it(
    root: Path, env: dict[str, str]
) -> None:
    config = _append(
        write_config(root, {"idle": IDLE}),
        '[[converters]]\nname = "ict"\nconverter = "wsjf"\nwatch_folder = "new/ict-out"\n'
        "create_watch_folder = true\n",
    )
    assert _cli("config", "validate", "--config", str(config), env=env).stderr == ""
    started = _cli("start", "--config", str(config), "--detach", env=env)
    try:
        assert started.returncode == 0, started.stderr
        assert (root / "new" / "ict-out").is_dir()
    finally:
        _cli("stop", "--config", str(config), env=env)
