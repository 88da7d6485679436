"""The supervisor with real worker processes: start, stop, restart, backoff, flapping, hangs."""

from __future__ import annotations

import os
import signal
import time

from tests.integration.supervisor_harness import IDLE, alive, supervised, wait_for
from wats.protocol import topics


def test_start_runs_every_worker_and_shutdown_stops_them_all() -> None:
    with supervised({"one": IDLE, "two": IDLE}) as sup:
        one = sup.wait_running("one")
        two = sup.wait_running("two")
        status = sup.status()
        assert status["supervisor"]["pid"] == sup.proc.pid
        assert status["supervisor"]["instance"] == "t"
        assert one["restarts"] == 0 and one["rss"] > 0 and one["heartbeat_age"] < 1.0
        assert sup.request("shutdown").ok
        assert sup.proc.wait(timeout=15) == 0
        assert not alive(one["pid"]) and not alive(two["pid"])
        assert not (sup.runtime_dir / "endpoints.json").exists()


def test_sigkilled_worker_is_back_within_the_backoff() -> None:
    with supervised({"idle": IDLE}) as sup:
        first = sup.wait_running("idle")
        killed_at = time.monotonic()
        os.kill(first["pid"], signal.SIGKILL)
        second = sup.wait_running("idle", not_pid=first["pid"], timeout=5.0)
        elapsed = time.monotonic() - killed_at
        assert second["restarts"] == 1
        assert second["last_exit"] == {"code": None, "signal": signal.SIGKILL, "reason": "killed"}
        # the first restart is immediate; what remains is a fresh interpreter's start-up
        assert elapsed < 3.0, elapsed


def test_crash_loop_backs_off_then_fails_with_an_alarm_then_retries_after_the_cooldown() -> None:
    crashy = {
        "target": "wats.workers.testing:CrashingWorker",
        "args": {"after_seconds": 0.0, "exit_code": 3},
    }
    policy = {"flap_max_restarts": 3, "flap_window_seconds": 30.0, "flap_cooldown_seconds": 2.0}
    with supervised({"crashy": crashy}, policy) as sup:
        sub = sup.subscribe([topics.SUPERVISOR_WORKER])
        events: list[tuple[str, dict]] = []

        def saw_started_after_failed() -> bool:
            env = sub.recv(timeout=0.2)
            if env is not None:
                events.append((env.type, env.body))
            types = [t for t, _ in events]
            return (
                topics.SUPERVISOR_WORKER_FAILED in types
                and topics.SUPERVISOR_WORKER_STARTED
                in types[types.index(topics.SUPERVISOR_WORKER_FAILED) :]
            )

        wait_for(saw_started_after_failed, 30.0, "failed alarm, then a retry", interval=0)
        restarting = [b for t, b in events if t == topics.SUPERVISOR_WORKER_RESTARTING]
        delays = [b["delay"] for b in restarting]
        assert delays == sorted(delays) and delays[-1] > 0, delays
        assert all(b["worker"] == "crashy" for b in restarting)
        failed = next(b for t, b in events if t == topics.SUPERVISOR_WORKER_FAILED)
        assert failed == {
            "worker": "crashy",
            "restarts": 4,
            "window": 30.0,
            "retry_in": 2.0,
            "reason": "flapping",
            "message": "",
        }
        exits = [b for t, b in events if t == topics.SUPERVISOR_WORKER_EXITED]
        assert exits and all(b["exit_code"] == 3 and b["reason"] == "exit" for b in exits)


def test_failed_worker_shows_failed_in_status_until_the_cooldown() -> None:
    crashy = {"target": "wats.workers.testing:CrashingWorker", "args": {"after_seconds": 0.0}}
    policy = {"flap_max_restarts": 2, "flap_cooldown_seconds": 60.0}
    with supervised({"crashy": crashy}, policy) as sup:
        entry = wait_for(
            lambda: (w := sup.worker("crashy"))["state"] == "FAILED" and w, 30.0, "FAILED"
        )
        assert entry["pid"] is None and entry["last_exit"]["code"] == 1
        # a manual start is allowed at any time and resets the breaker
        assert sup.request("start", {"worker": "crashy"}).result["state"] == "STARTING"


def test_hung_worker_is_killed_and_restarted() -> None:
    hangs = {"target": "wats.workers.testing:HangingWorker", "args": {"after_seconds": 0.3}}
    with supervised({"hangs": hangs}) as sup:
        sub = sup.subscribe([topics.SUPERVISOR_WORKER_EXITED])
        first = sup.wait_running("hangs")
        exited = wait_for(lambda: sub.recv(timeout=0.2), 10.0, "the hung worker's exit")
        assert exited.body["reason"] == "hung"
        assert exited.body["pid"] == first["pid"]
        assert exited.body["signal"] == signal.SIGKILL
        wait_for(lambda: not alive(first["pid"]), 5.0, "the hung worker gone")
        second = sup.wait_running("hangs", not_pid=first["pid"], timeout=10.0)
        assert second["last_exit"]["reason"] == "hung"


def test_worker_child_and_setsid_grandchild_do_not_survive_stop() -> None:
    family = {"target": "wats.workers.testing:FamilyWorker"}
    with supervised({"family": family}) as sup:
        entry = wait_for(
            lambda: (w := sup.worker("family"))["detail"].get("grandchild_pid") and w,
            15.0,
            "the family's pids",
        )
        pids = [entry["pid"], entry["detail"]["child_pid"], entry["detail"]["grandchild_pid"]]
        assert all(alive(p) for p in pids)
        assert sup.request("stop", {"worker": "family"}).ok
        wait_for(lambda: not any(alive(p) for p in pids), 10.0, "the whole family gone")
        assert sup.worker("family")["state"] == "STOPPED"


def test_a_sigkilled_workers_descendants_are_killed_before_the_restart() -> None:
    family = {"target": "wats.workers.testing:FamilyWorker"}
    with supervised({"family": family}) as sup:
        entry = wait_for(
            lambda: (w := sup.worker("family"))["detail"].get("grandchild_pid") and w,
            15.0,
            "the family's pids",
        )
        grandchild = entry["detail"]["grandchild_pid"]
        os.kill(entry["pid"], signal.SIGKILL)
        wait_for(lambda: not alive(grandchild), 10.0, "the orphaned grandchild gone")
        sup.wait_running("family", not_pid=entry["pid"])


def test_stop_then_start_and_restart_of_one_worker() -> None:
    with supervised({"idle": IDLE, "other": IDLE}) as sup:
        first = sup.wait_running("idle")
        other = sup.wait_running("other")
        assert sup.request("stop", {"worker": "idle"}).ok
        wait_for(lambda: sup.worker("idle")["state"] == "STOPPED", 10.0, "idle STOPPED")
        assert sup.worker("idle")["last_exit"]["reason"] == "stopped"
        assert not alive(first["pid"])
        assert sup.request("start", {"worker": "idle"}).ok
        second = sup.wait_running("idle", not_pid=first["pid"])
        assert sup.request("restart", {"worker": "idle"}).ok
        third = sup.wait_running("idle", not_pid=second["pid"])
        assert third["restarts"] == 0  # planned restarts are not crashes
        assert sup.worker("other")["pid"] == other["pid"]


def test_a_crashed_worker_gets_a_warm_spare_that_replaces_it_on_the_next_crash() -> None:
    import json

    with supervised({"idle": IDLE}) as sup:
        first = sup.wait_running("idle")
        os.kill(first["pid"], signal.SIGKILL)
        second = sup.wait_running("idle", not_pid=first["pid"])

        def spare_pid() -> int | None:
            refs = json.loads(sup.state_file.read_text())["workers"].get("idle", [])
            others = [r["pid"] for r in refs if r["pid"] != second["pid"]]
            return others[0] if others else None

        spare = wait_for(spare_pid, 10.0, "a warm spare in the state file")
        os.kill(second["pid"], signal.SIGKILL)
        third = sup.wait_running("idle", not_pid=second["pid"])
        assert third["pid"] == spare
