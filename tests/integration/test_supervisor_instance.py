"""One supervisor per instance, and no orphans: the lock, the state file, a SIGKILLed supervisor."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

from tests.integration.supervisor_harness import (
    IDLE,
    Supervised,
    alive,
    kill_quietly,
    new_root,
    start_process,
    supervised,
    wait_for,
    wait_ready,
    write_config,
)

FAMILY = {"target": "wats.workers.testing:FamilyWorker"}


def test_second_instance_is_refused_naming_the_running_pid() -> None:
    with supervised({"idle": IDLE}) as sup:
        second = subprocess.run(
            [sys.executable, "-m", "wats.supervisor", "--config", str(sup.config)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert f"pid {sup.proc.pid}" in second.stderr
        assert sup.request("ping").ok


def test_sigkilled_supervisor_leaves_no_worker_alive_three_seconds_later() -> None:
    with supervised({"one": IDLE, "two": IDLE}) as sup:
        pids = [sup.wait_running("one")["pid"], sup.wait_running("two")["pid"]]
        os.kill(sup.proc.pid, signal.SIGKILL)
        sup.proc.wait(timeout=5)
        try:
            wait_for(lambda: not any(alive(p) for p in pids), 3.0, "every worker gone")
        finally:
            for pid in pids:
                kill_quietly(pid)


def test_stale_lock_is_taken_over_and_leftovers_of_the_old_run_are_killed() -> None:
    root = new_root()
    try:
        config = write_config(root, {"family": FAMILY})
        first = Supervised(root, config, start_process(config))
        try:
            wait_ready(first)
            entry = wait_for(
                lambda: (w := first.worker("family"))["detail"].get("grandchild_pid") and w,
                15.0,
                "the family's pids",
            )
            # the state file must know the descendants before the supervisor dies
            grandchild = entry["detail"]["grandchild_pid"]
            wait_for(lambda: str(grandchild) in first.state_file.read_text(), 5.0, "state file")
            os.kill(first.proc.pid, signal.SIGKILL)
            first.proc.wait(timeout=5)
        finally:
            first.close()
        # The worker exits by itself (orphaned); its setsid'd grandchild sleeps on.
        assert alive(grandchild)
        second = Supervised(root, config, start_process(config))
        try:
            wait_ready(second)
            wait_for(lambda: not alive(grandchild), 5.0, "the leftover grandchild killed")
            second.wait_running("family")
        finally:
            second.close()
    finally:
        kill_quietly(grandchild)
        shutil.rmtree(root, ignore_errors=True)


def test_lock_file_naming_a_dead_pid_does_not_block_start() -> None:
    root = new_root()
    try:
        config = write_config(root, {"idle": IDLE})
        (root / "data").mkdir(mode=0o700)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        (root / "data" / "supervisor.lock").write_text(f"{dead.pid}\n")
        sup = Supervised(root, config, start_process(config))
        try:
            wait_ready(sup)
            sup.wait_running("idle")
            lock_text = (root / "data" / "supervisor.lock").read_text().strip()
            assert lock_text == str(sup.proc.pid)
        finally:
            sup.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
