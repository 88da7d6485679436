"""One-line wording of bus events (``events`` and the monitor's event list share it)."""

from __future__ import annotations

import json
import time

from wats.cli.event_format import (
    clock,
    describe,
    describe_exit,
    describe_gap,
    event_to_json,
    format_event,
    seconds,
)
from wats.cli.seq_gaps import SeqGaps
from wats.protocol.envelope import Envelope


def envelope(event_type: str, body: dict, src: str = "supervisor", seq: int = 1) -> Envelope:
    return Envelope(type=event_type, src=src, seq=seq, body=body, ts=1_700_000_000.25)


def test_event_line_has_time_sender_type_and_key_fields() -> None:
    event = envelope(
        "supervisor.worker.exited",
        {"worker": "sync", "pid": 4242, "exit_code": None, "signal": 9, "reason": "killed"},
    )
    line = format_event(event)
    assert line.startswith(clock(event.ts))
    assert "supervisor" in line and "supervisor.worker.exited" in line
    assert "sync pid=4242 exited: SIGKILL (killed)" in line
    assert "\n" not in line


def test_clock_shows_local_time_to_the_millisecond() -> None:
    ts = 1_700_000_000.125
    assert clock(ts) == time.strftime("%H:%M:%S", time.localtime(ts)) + ".125"


def test_each_known_type_is_described_by_its_key_fields() -> None:
    cases = {
        "worker.heartbeat": (
            {"worker": "health", "pid": 7, "progress": 12, "ready": True, "detail": {}},
            "health pid=7 progress=12 ready",
        ),
        "supervisor.heartbeat": ({"pid": 3, "instance": "lab"}, "pid=3 instance=lab"),
        "supervisor.worker.started": ({"worker": "sync", "pid": 8}, "sync started pid=8"),
        "supervisor.worker.restarting": (
            {"worker": "sync", "attempt": 3, "delay": 0.4},
            "sync restart attempt 3 in 0.4s",
        ),
        "supervisor.worker.failed": (
            {"worker": "crashy", "restarts": 11, "window": 60.0, "retry_in": 300.0},
            "crashy FAILED: 11 restarts within 1m00s; next try in 5m00s",
        ),
        "supervisor.worker.stopped": ({"worker": "sync"}, "sync stopped"),
        "connection.status": (
            {"status": "ONLINE", "url": "http://h:1", "since": 1.0, "latency_ms": 12.4,
             "error": None},
            "ONLINE http://h:1 12 ms",
        ),
        "sync.completed": (
            {"processes": 5, "levels": 2, "product_groups": 3, "source": "cache"},
            "5 processes, 2 levels, 3 product groups (from cache)",
        ),
        "sync.failed": ({"error": "server unreachable"}, "server unreachable"),
        "control.reply": (
            {"request_id": "abc", "ok": False, "result": None,
             "error": {"code": "unknown_worker", "reason": "no worker 'x'"}},
            "error unknown_worker: no worker 'x'",
        ),
    }
    for event_type, (body, expected) in cases.items():
        assert describe(event_type, body) == expected, event_type


def test_offline_connection_shows_the_error() -> None:
    text = describe(
        "connection.status",
        {"status": "OFFLINE", "url": "http://h:1", "since": 1.0, "latency_ms": None,
         "error": "connection refused"},
    )
    assert text == "OFFLINE http://h:1: connection refused"


def test_exit_is_described_by_code_or_signal_and_unplanned_reason() -> None:
    assert describe_exit(3, None, "exit") == "code 3"
    assert describe_exit(None, 15, "stopped") == "SIGTERM (stopped)"
    assert describe_exit(None, 9, "hung") == "SIGKILL (hung)"
    assert describe_exit(None, 250, None) == "signal 250"
    assert describe_exit(None, None, None) == "unknown status"


def test_unknown_type_lists_its_fields_compactly() -> None:
    text = describe("queue.counts", {"pending": 3, "failed": 0, "name": "main"})
    assert text == 'pending=3 failed=0 name="main"'


def test_long_unknown_body_is_cut_to_one_short_line() -> None:
    text = describe("blob", {"data": "x" * 1000})
    assert len(text) <= 160 and text.endswith("…")


def test_known_type_with_unexpected_body_is_still_shown() -> None:
    text = describe("supervisor.worker.restarting", {"worker": "w", "delay": "soon"})
    assert 'delay="soon"' in text


def test_json_line_is_the_whole_envelope() -> None:
    event = envelope("sync.failed", {"error": "boom"}, src="sync", seq=4)
    record = json.loads(event_to_json(event))
    assert record == {
        "v": 1, "type": "sync.failed", "id": event.id, "ts": event.ts, "src": "sync", "seq": 4,
        "body": {"error": "boom"},
    }


def test_durations_are_short_and_readable() -> None:
    assert seconds(None) == "-"
    assert seconds(0.5) == "0.5s"
    assert seconds(42) == "42s"
    assert seconds(300) == "5m00s"
    assert seconds(7380) == "2h03m"


def test_gap_note_counts_missed_events() -> None:
    assert describe_gap("health", 1) == "-- 1 event from health missed (sequence gap) --"
    assert describe_gap("health", 3) == "-- 3 events from health missed (sequence gap) --"


def test_sequence_jump_per_sender_and_type_counts_missed_events() -> None:
    gaps = SeqGaps()
    assert gaps.observe("health", "worker.heartbeat", 5) == 0  # joined mid-stream
    assert gaps.observe("health", "connection.status", 1) == 0  # other type, own sequence
    assert gaps.observe("health", "worker.heartbeat", 6) == 0
    assert gaps.observe("health", "worker.heartbeat", 9) == 2
    assert gaps.observe("sync", "worker.heartbeat", 1) == 0
    assert gaps.missed == {"health": 2}
    assert gaps.total == 2


def test_sequence_restart_or_unsequenced_message_is_not_a_gap() -> None:
    gaps = SeqGaps()
    gaps.observe("crashy", "worker.heartbeat", 40)
    assert gaps.observe("crashy", "worker.heartbeat", 1) == 0  # new process counts afresh
    assert gaps.observe("cli:1", "control.request", 0) == 0
    assert gaps.observe("cli:1", "control.request", 0) == 0
    assert gaps.total == 0
