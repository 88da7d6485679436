"""The monitor's state model (fed with envelopes) and its rendering, without a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from wats.cli.monitor_view import (
    BACKOFF,
    FAILED,
    RUNNING,
    STARTING,
    STOPPED,
    MonitorState,
    bytes_text,
    render_monitor,
)
from wats.protocol.envelope import Envelope

T0 = 1_700_000_000.0


class Bus:
    """Builds envelopes the way publishers do: a seq per (sender, type), starting at 1."""

    def __init__(self) -> None:
        self.seqs: dict[tuple[str, str], int] = {}

    def event(self, event_type: str, body: dict[str, Any], *, src: str = "supervisor",
              ts: float = T0, skip: int = 0) -> Envelope:
        key = (src, event_type)
        self.seqs[key] = self.seqs.get(key, 0) + 1 + skip
        return Envelope(type=event_type, src=src, seq=self.seqs[key], ts=ts, body=body)

    def heartbeat(self, worker: str, pid: int, ts: float, progress: int = 1, **detail: Any
                  ) -> Envelope:
        body = {"worker": worker, "pid": pid, "progress": progress, "ready": True,
                "detail": detail}
        return self.event("worker.heartbeat", body, src=worker, ts=ts)


def status_reply(**overrides: Any) -> dict[str, Any]:
    worker = {
        "name": "health", "state": "RUNNING", "pid": 100, "restarts": 2, "uptime": 30.0,
        "rss": 40 * 1024 * 1024, "cpu_percent": 1.5, "last_exit": None, "heartbeat_age": 0.5,
        "progress": 9, "ready": True,
    }
    worker.update(overrides)
    return {
        "supervisor": {"pid": 1, "instance": "lab", "started": T0 - 60, "uptime": 60,
                       "config": "/etc/x.toml"},
        "connection": {"status": "ONLINE", "url": "http://127.0.0.1:9", "since": T0 - 10,
                       "latency_ms": 3.0, "error": None},
        "workers": [worker, {**worker, "name": "sync", "pid": 101, "restarts": 0}],
    }


def text_of(state: MonitorState, now: float, width: int = 160, live: bool = True) -> str:
    console = Console(width=width, record=True, color_system=None, force_terminal=False)
    with console.capture() as capture:
        console.print(render_monitor(state, now, width, live=live))
    return capture.get()


def test_status_reply_fills_the_table_with_ages_turned_into_times() -> None:
    state = MonitorState()
    state.apply_status(status_reply(), now=T0)
    health = state.workers["health"]
    assert (health.state, health.pid, health.restarts) == (RUNNING, 100, 2)
    assert health.heartbeat_age(T0 + 2) == 2.5
    assert health.uptime(T0 + 10) == 40.0
    assert list(state.workers) == ["health", "sync"]
    assert state.instance == "lab" and state.supervisor_pid == 1
    assert state.connection is not None and state.connection["status"] == "ONLINE"


def test_heartbeat_resets_the_workers_heartbeat_age_and_progress() -> None:
    bus, state = Bus(), MonitorState()
    state.apply_status(status_reply(heartbeat_age=5.0), now=T0)
    state.apply(bus.heartbeat("health", 100, ts=T0 + 1, progress=42, rss=1024, cpu_percent=0.5))
    health = state.workers["health"]
    assert health.heartbeat_age(T0 + 1.25) == 0.25
    assert health.progress == 42 and health.rss == 1024 and health.cpu_percent == 0.5


def test_heartbeats_do_not_fill_the_latest_events_list() -> None:
    bus, state = Bus(), MonitorState()
    for i in range(5):
        state.apply(bus.heartbeat("health", 100, ts=T0 + i))
    state.apply(bus.event("supervisor.heartbeat", {"pid": 1, "instance": "x"}, ts=T0))
    assert not state.events
    assert state.events_seen == 6


def test_kill_and_restart_events_walk_the_worker_through_its_states() -> None:
    bus, state = Bus(), MonitorState()
    state.apply_status(status_reply(), now=T0)
    state.apply(bus.event("supervisor.worker.exited", {
        "worker": "health", "pid": 100, "exit_code": None, "signal": 9, "reason": "killed"},
        ts=T0 + 1))
    health = state.workers["health"]
    assert (health.state, health.pid) == (BACKOFF, None)
    assert health.last_exit == {"code": None, "signal": 9, "reason": "killed"}
    state.apply(bus.event("supervisor.worker.restarting",
                          {"worker": "health", "attempt": 1, "delay": 0.0}, ts=T0 + 1))
    assert health.restarts == 3
    state.apply(bus.event("supervisor.worker.started", {"worker": "health", "pid": 200},
                          ts=T0 + 1.1))
    assert (health.state, health.pid, health.heartbeat_age(T0 + 2)) == (STARTING, 200, None)
    state.apply(bus.heartbeat("health", 200, ts=T0 + 1.2))
    assert health.state == RUNNING
    assert health.uptime(T0 + 2.1) == 1.0


def test_late_heartbeat_of_a_replaced_process_is_ignored() -> None:
    bus, state = Bus(), MonitorState()
    state.apply_status(status_reply(), now=T0)
    state.apply(bus.event("supervisor.worker.started", {"worker": "health", "pid": 200}))
    state.apply(bus.heartbeat("health", 200, ts=T0 + 1))
    state.apply(bus.heartbeat("health", 100, ts=T0 + 2, progress=999))
    assert state.workers["health"].pid == 200
    assert state.workers["health"].progress == 1


def test_flapping_alarm_marks_the_worker_failed_with_its_retry_time() -> None:
    bus, state = Bus(), MonitorState()
    state.apply(bus.event("supervisor.worker.failed",
                          {"worker": "crashy", "restarts": 11, "window": 60.0, "retry_in": 300.0},
                          ts=T0))
    assert state.workers["crashy"].state == FAILED
    screen = text_of(state, now=T0 + 60)
    assert "FAILED (4m00s)" in screen
    assert "crashy FAILED: 11 restarts" in screen


def test_planned_stop_marks_the_worker_stopped() -> None:
    bus, state = Bus(), MonitorState()
    state.apply_status(status_reply(), now=T0)
    state.apply(bus.event("supervisor.worker.exited", {
        "worker": "sync", "pid": 101, "exit_code": 0, "signal": None, "reason": "stopped"}))
    assert state.workers["sync"].state == STOPPED
    state.apply(bus.event("supervisor.worker.stopped", {"worker": "sync"}))
    assert state.workers["sync"].state == STOPPED and state.workers["sync"].pid is None


def test_connection_status_event_replaces_the_connection_state() -> None:
    bus, state = Bus(), MonitorState()
    state.apply_status(status_reply(), now=T0)
    state.apply(bus.event("connection.status", {
        "status": "OFFLINE", "url": "http://127.0.0.1:9", "since": T0 + 5, "latency_ms": None,
        "error": "connection refused"}, src="health", ts=T0 + 5))
    screen = text_of(state, now=T0 + 6)
    assert "server: OFFLINE" in screen and "connection refused" in screen


def test_latest_events_keep_only_the_newest() -> None:
    bus, state = Bus(), MonitorState(max_events=3)
    for i in range(5):
        state.apply(bus.event("supervisor.worker.stopped", {"worker": f"w{i}"}, ts=T0 + i))
    assert [e.text for e in state.events] == ["w2 stopped", "w3 stopped", "w4 stopped"]


def test_sequence_gap_is_listed_and_counted() -> None:
    bus, state = Bus(), MonitorState()
    state.apply(bus.heartbeat("health", 100, ts=T0))
    bus.seqs[("health", "worker.heartbeat")] += 4  # four heartbeats lost on the way
    state.apply(bus.heartbeat("health", 100, ts=T0 + 5))
    assert state.gaps.missed == {"health": 4}
    screen = text_of(state, now=T0 + 5)
    assert "4 event(s) from health missed" in screen
    assert "missed 4 (health 4)" in screen


def test_silent_worker_and_silent_supervisor_are_flagged() -> None:
    bus, state = Bus(), MonitorState(heartbeat_interval=1.0, heartbeat_misses=3)
    state.apply_status(status_reply(), now=T0)
    state.apply(bus.event("supervisor.heartbeat", {"pid": 1, "instance": "lab"}, ts=T0))
    assert state.supervisor_silent_for(T0 + 2) is None
    assert state.supervisor_silent_for(T0 + 10) == 10
    screen = text_of(state, now=T0 + 10)
    assert "supervisor silent for 10s" in screen
    assert "10s " in screen  # worker heartbeat age shown, old


def test_screen_lists_every_worker_with_its_columns() -> None:
    state = MonitorState()
    state.apply_status(status_reply(), now=T0)
    screen = text_of(state, now=T0)
    for expected in ("Workers", "health", "sync", "RUNNING", "100", "101", "40.0 MB", "1.5%",
                     "0.5s", "ONLINE", "instance lab", "supervisor pid 1", "up 1m00s"):
        assert expected in screen, expected


def test_empty_state_renders_placeholders() -> None:
    screen = text_of(MonitorState(), now=T0)
    assert "no workers reported yet" in screen
    assert "unknown (no connection status yet)" in screen


def test_body_of_unexpected_shape_does_not_break_the_view() -> None:
    state = MonitorState()
    state.apply(Envelope(type="supervisor.worker.started", src="supervisor", seq=1,
                         body={"pid": 3}))
    state.apply(Envelope(type="future.thing", src="x", seq=1, body={"a": 1}))
    assert not state.workers
    assert "a=1" in text_of(state, now=T0)


def test_sizes_are_shown_in_readable_units() -> None:
    assert bytes_text(None) == "-"
    assert bytes_text(512) == "512 B"
    assert bytes_text(1536) == "1.5 KB"
    assert bytes_text(3 * 1024**3) == "3.0 GB"


def test_narrow_terminal_keeps_the_essential_columns_whole() -> None:
    bus, state = Bus(), MonitorState()
    state.apply_status(status_reply(), now=T0)
    state.apply(bus.event("supervisor.worker.failed",
                          {"worker": "crashy", "restarts": 11, "window": 60.0, "retry_in": 300.0},
                          ts=T0))
    screen = text_of(state, now=T0, width=80)
    assert all(len(line) <= 80 for line in screen.splitlines())
    for expected in ("restarts", "heartbeat", "health", "crashy", "FAILED (5m00s)", "40.0 MB",
                     "1.5%", "100"):
        assert expected in screen, expected
    assert "last exit" not in screen


def test_dropped_invalid_frames_are_counted_in_the_footer() -> None:
    state = MonitorState()
    state.dropped = 3
    assert "3 invalid frames dropped" in text_of(state, now=T0)


def test_snapshot_does_not_offer_ctrl_c() -> None:
    assert "Ctrl+C" in text_of(MonitorState(), now=T0)
    assert "Ctrl+C" not in text_of(MonitorState(), now=T0, live=False)


def upload(bus: Bus, ts: float, report_id: str = "r") -> Envelope:
    return bus.event("report.uploaded", {"id": report_id, "attempts": 1, "latency_ms": 9.0},
                     src="uploader", ts=ts)


def test_queue_stats_event_fills_the_queue_counts() -> None:
    bus, state = Bus(), MonitorState()
    assert state.queue is None
    state.apply(bus.event("queue.stats", {"pending": 4, "failed": 1, "completed": 30,
                                          "in_flight": 2, "uploaded_total": 29,
                                          "paused": True}, src="uploader"))
    queue = state.queue
    assert queue is not None
    assert (queue.pending, queue.failed, queue.completed) == (4, 1, 30)
    assert (queue.in_flight, queue.uploaded_total, queue.paused) == (2, 29, True)


def test_status_queue_block_updates_counts_and_keeps_what_it_does_not_know() -> None:
    bus, state = Bus(), MonitorState()
    state.apply_status({**status_reply(), "queue": {"pending": 2, "failed": 0,
                                                    "completed": 5}}, now=T0)
    assert state.queue is not None and state.queue.in_flight is None
    state.apply(bus.event("queue.stats", {"pending": 1, "failed": 0, "completed": 6,
                                          "in_flight": 1, "paused": False}, src="uploader"))
    state.apply_status({**status_reply(), "queue": {"pending": 0, "failed": 0,
                                                    "completed": 7}}, now=T0 + 5)
    assert (state.queue.pending, state.queue.completed) == (0, 7)
    assert (state.queue.in_flight, state.queue.paused) == (1, False)


def test_status_without_queue_block_leaves_the_queue_unknown() -> None:
    state = MonitorState()
    state.apply_status(status_reply(), now=T0)
    assert state.queue is None


def test_upload_rate_counts_uploads_of_the_last_minute_only() -> None:
    bus, state = Bus(), MonitorState()
    for ts in (T0, T0 + 10, T0 + 50, T0 + 59):
        state.apply(upload(bus, ts))
    assert state.pipeline.uploads_per_minute(T0 + 59) == 4
    assert state.pipeline.uploads_per_minute(T0 + 75) == 2  # T0 and T0+10 fell out
    assert state.pipeline.uploads_per_minute(T0 + 200) == 0
    assert state.pipeline.uploaded == 4


def test_old_upload_times_are_forgotten_as_new_ones_arrive() -> None:
    bus, state = Bus(), MonitorState()
    for i in range(100):
        state.apply(upload(bus, T0 + i * 10))
    assert len(state.pipeline.upload_times) <= 7
    assert state.pipeline.uploaded == 100


def test_file_and_upload_failure_events_are_counted() -> None:
    bus, state = Bus(), MonitorState()
    conv = {"converter": "c", "path": "a.json", "report_ids": ["r"], "confidence": 1.0}
    state.apply(bus.event("file.converted", conv, src="conv"))
    state.apply(bus.event("file.converted", conv, src="conv"))
    state.apply(bus.event("file.failed", {"converter": "c", "path": "b.json",
                                          "reason": "rejected", "error_file": "b.err"},
                          src="conv"))
    state.apply(bus.event("file.alarm", {"converter": "c", "path": "a.json",
                                         "confidence": 0.1, "threshold": 0.5}, src="conv"))
    state.apply(bus.event("report.failed", {"id": "r", "error": "503", "permanent": False,
                                            "attempts": 1}, src="uploader"))
    counts = state.pipeline
    assert (counts.converted, counts.failed, counts.alarms, counts.upload_errors) == (2, 1, 1, 1)
    assert [e.type for e in state.events][-1] == "report.failed"


def test_screen_shows_the_queue_line_and_rates_at_a_fixed_time() -> None:
    bus, state = Bus(), MonitorState()
    state.apply_status(status_reply(), now=T0)
    state.apply(bus.event("queue.stats", {"pending": 3, "failed": 1, "completed": 42,
                                          "in_flight": 2, "paused": True}, src="uploader"))
    for ts in (T0 - 90, T0 - 30, T0 - 1):
        state.apply(upload(bus, ts))
    state.apply(bus.event("file.converted", {"converter": "c", "path": "a.json",
                                             "report_ids": ["r"], "confidence": 1.0},
                          src="conv"))
    screen = text_of(state, T0)
    assert "queue: 3 pending, 1 failed, 42 completed, 2 in flight  PAUSED" in screen
    assert "uploads: 2/min (last 60 s), 3 since monitor start" in screen
    assert "files: 1 converted, 0 failed" in screen
    assert "a.json → 1 report (c), confidence 1.00" in screen


def test_duplicates_are_counted_and_shown_as_already_delivered() -> None:
    bus, state = Bus(), MonitorState()
    state.apply_status(status_reply(), now=T0)
    dup = {"id": "3f2a1b2c" + "0" * 24, "converter": "c", "source": "again.json",
           "state": "completed"}
    state.apply(bus.event("report.duplicate", dup, src="conv"))
    state.apply(bus.event("file.converted", {"converter": "c", "path": "again.json",
                                             "report_ids": [dup["id"]],
                                             "duplicates": [dup["id"]], "confidence": 1.0},
                          src="conv"))
    assert state.pipeline.duplicates == 1
    screen = text_of(state, T0)
    assert "1 duplicate report (already delivered)" in screen
    assert "again.json → no new report: already delivered as 3f2a1b2c…" in screen


def test_screen_says_when_the_queue_is_not_known_yet() -> None:
    screen = text_of(MonitorState(), T0)
    assert "queue: unknown (no queue stats yet)" in screen
    assert "uploads: 0/min (last 60 s), 0 since monitor start" in screen
