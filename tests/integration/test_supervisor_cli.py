"""``wats-supervisor start --detach | status | restart | instances | stop`` as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.integration.supervisor_harness import IDLE, alive, new_root, wait_for, write_config


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "wats-supervisor"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_detached_start_status_restart_and_stop_through_the_cli() -> None:
    root = new_root()
    config = str(write_config(root, {"idle": IDLE}))
    env = {**os.environ, "XDG_DATA_HOME": str(root / "xdg")}
    pid = None
    try:
        started = _cli("start", "--config", config, "--detach", env=env)
        assert started.returncode == 0, started.stderr
        assert "idle" in started.stdout and "RUNNING" in started.stdout
        # the hints name this config: a bare `stop` would act on the default instance
        assert f"wats-supervisor stop --config {config}" in started.stderr

        status = json.loads(_cli("status", "--config", config, "--json", env=env).stdout)
        pid = status["supervisor"]["pid"]
        worker = status["workers"][0]
        assert worker["name"] == "idle" and worker["state"] == "RUNNING"

        again = _cli("start", "--config", config, env=env)
        assert again.returncode == 1 and f"pid {pid}" in again.stderr

        restarted = _cli("restart", "idle", "--config", config, env=env)
        assert restarted.returncode == 0, restarted.stderr

        def new_worker_running() -> bool:
            out = _cli("status", "--config", config, "--json", env=env).stdout
            w = json.loads(out)["workers"][0]
            return w["state"] == "RUNNING" and w["pid"] != worker["pid"]

        wait_for(new_worker_running, 20.0, "the restarted worker", interval=0.2)
        unknown = _cli("restart", "ghost", "--config", config, env=env)
        assert unknown.returncode == 1 and "unknown_worker" in unknown.stderr

        stopped = _cli("stop", "--config", config, env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert not alive(pid)
        gone = _cli("status", "--config", config, env=env)
        assert gone.returncode == 1 and "not running" in gone.stderr
    finally:
        if pid and alive(pid):
            os.kill(pid, 9)
        shutil.rmtree(root, ignore_errors=True)


def test_instances_lists_running_instances_of_the_default_data_folder() -> None:
    root = new_root()
    env = {**os.environ, "XDG_DATA_HOME": str(root / "xdg"), "XDG_CONFIG_HOME": str(root / "c")}
    config = root / "config.toml"
    # default data dir (so `instances` finds it), short runtime dir (ipc path limit)
    config.write_text(
        '[instance]\nname = "alpha"\n[workers.health]\nenabled = false\n'
        "[workers.sync]\nenabled = false\n[workers.server]\nenabled = false\n"
        f'[workers.idle]\ntarget = "{IDLE["target"]}"\n'
        f'[paths]\nruntime_dir = "{root / "run"}"\n'
    )
    pid = None
    try:
        assert _cli("instances", env=env).stdout.strip() == "no running instances"
        started = _cli("start", "--config", str(config), "--detach", env=env)
        assert started.returncode == 0, started.stderr
        rows = json.loads(_cli("instances", "--json", env=env).stdout)
        assert [r["name"] for r in rows] == ["alpha"]
        pid = rows[0]["pid"]
        assert rows[0]["config"] == str(config)
        assert _cli("stop", "--config", str(config), env=env).returncode == 0
    finally:
        if pid and alive(pid):
            os.kill(pid, 9)
        shutil.rmtree(root, ignore_errors=True)
