"""Supervisor parts without a supervisor: specs and stop order, the state file, leftovers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

from wats.config.models import ClientConfig
from wats.supervisor.process import ProcessRef, kill_refs
from wats.supervisor.spec import WorkerSpec, specs_from_config, stop_groups
from wats.supervisor.state import SupervisorState, kill_leftovers, read_state, write_state


def test_specs_come_from_enabled_workers_in_config_order() -> None:
    cfg = ClientConfig.model_validate(
        {
            "workers": {
                "sync": {"enabled": False},
                "crashy": {"target": "wats.workers.testing:CrashingWorker", "args": {"a": 1}},
            }
        }
    )
    specs = {s.name: s for s in specs_from_config(cfg)}
    assert "sync" not in specs
    assert specs["crashy"].args == {"a": 1}
    assert specs["crashy"].target == "wats.workers.testing:CrashingWorker"


def test_shutdown_stops_producers_then_consumers_then_services() -> None:
    specs = [
        WorkerSpec("health", "m:C", "service"),
        WorkerSpec("upload", "m:C", "consumer"),
        WorkerSpec("watch", "m:C", "producer"),
        WorkerSpec("convert", "m:C", "consumer"),
    ]
    groups = [[s.name for s in group] for group in stop_groups(specs)]
    assert groups == [["watch"], ["upload", "convert"], ["health"]]


def test_state_file_round_trips_and_is_private(tmp_path: Path) -> None:
    state = SupervisorState.for_this_process("main", "/etc/wats.toml")
    state.workers = {"sync": [ProcessRef(123, 456.5)]}
    path = tmp_path / "state.json"
    write_state(path, state)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = read_state(path)
    assert loaded == state
    assert loaded.is_running()


def test_damaged_or_missing_state_file_reads_as_none(tmp_path: Path) -> None:
    assert read_state(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert read_state(tmp_path / "bad.json") is None


def test_leftovers_are_killed_only_when_pid_and_create_time_match() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        created = psutil.Process(sleeper.pid).create_time()
        assert kill_refs([ProcessRef(sleeper.pid, created - 5.0)]) == 0  # a reused pid
        assert sleeper.poll() is None
        refs = {"w": [ProcessRef(sleeper.pid, created)]}
        assert kill_leftovers(SupervisorState(1, 0.0, "main", None, 0.0, refs)) == 1
        sleeper.wait(timeout=5)  # (kill_leftovers already reaped it: no exit status left)
        assert ProcessRef(sleeper.pid, created).process() is None
    finally:
        sleeper.kill()
        sleeper.wait()
