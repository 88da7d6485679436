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


RID = "3f2a1b2c-0000-4000-8000-000000000001"


def test_each_pipeline_type_is_described_in_words() -> None:
    cases = {
        "file.detected": (
            {"converter": "wsjf", "path": "/in/result.json", "size": 1234},
            "result.json for wsjf, 1234 bytes",
        ),
        "file.pending": (
            {"converter": "wsjf", "path": "/p/result.json", "source": "/in/result.json"},
            "result.json → pending (wsjf)",
        ),
        "file.converted": (
            {"converter": "wsjf", "path": "/p/result.json", "report_ids": [RID],
             "confidence": 1.0, "warnings": []},
            "result.json → 1 report (wsjf), confidence 1.00",
        ),
        "file.alarm": (
            {"converter": "csv", "path": "/p/odd.csv", "confidence": 0.4, "threshold": 0.6},
            "odd.csv LOW CONFIDENCE 0.40 < 0.60 (csv)",
        ),
        "file.failed": (
            {"converter": "wsjf", "path": "/err/broken.json", "reason": "rejected",
             "error_file": "/err/broken.json.error.txt"},
            "broken.json → error (rejected): broken.json.error.txt",
        ),
        "report.queued": (
            {"id": RID, "converter": "wsjf", "source": "/p/result.json", "station": None},
            "3f2a1b2c… queued from result.json (wsjf)",
        ),
        "report.uploaded": (
            {"id": RID, "attempts": 1, "latency_ms": 63.7},
            "3f2a1b2c… after 1 attempt, 64 ms",
        ),
        "queue.stats": (
            {"pending": 3, "failed": 1, "completed": 120, "in_flight": 2,
             "uploaded_total": 118, "paused": False},
            "3 pending, 1 failed, 120 completed, 2 in flight, 118 uploaded",
        ),
    }
    for event_type, (body, expected) in cases.items():
        assert describe(event_type, body) == expected, event_type


def test_converted_file_counts_reports_and_warnings() -> None:
    text = describe("file.converted", {
        "converter": "wsxf", "path": "C:\\\\out\\\\run.xml", "report_ids": [RID, RID],
        "confidence": 0.9, "warnings": ["a", "b"]})
    assert text == "run.xml → 2 reports (wsxf), confidence 0.90, 2 warnings"


def test_file_names_keep_a_backslash_that_is_part_of_a_posix_name() -> None:
    # a non-UTF-8 name reaches the bus escaped as "bad\\xffname.json"; on POSIX a backslash is
    # an ordinary character of a name, never a separator
    for path, name in [
        ("/srv/in/bad\\xffname.json", "bad\\xffname.json"),
        ("/srv/in/a\\b.json", "a\\b.json"),
        ("/srv/in/run.json/", "run.json"),
        ("C:\\out\\run.xml", "run.xml"),
        ("c:/out/sub\\run.xml", "run.xml"),
        ("\\\\server\\share\\in\\run.xml", "run.xml"),
    ]:
        body = {"converter": "wsjf", "path": path}
        assert describe("file.pending", body) == f"{name} → pending (wsjf)", path


def test_poison_file_is_marked() -> None:
    text = describe("file.failed", {
        "converter": "wsjf", "path": "x.json", "reason": "crash", "error_file": "x.json.error",
        "poison": True})
    assert text == "x.json → error (crash): x.json.error [poison]"


def test_poison_file_names_which_deaths_quarantined_it() -> None:
    text = describe("file.failed", {
        "converter": "wsjf", "path": "x.json", "reason": "poison", "error_file": "x.json.error",
        "poison": True, "poison_cause": "worker"})
    assert text == "x.json → error (poison): x.json.error [poison: worker deaths]"


def test_retryable_upload_failure_shows_when_it_is_tried_again() -> None:
    body = {"id": RID, "error": "HTTP 503", "permanent": False, "attempts": 2,
            "next_attempt": 1_700_000_030.5}
    text = describe("report.failed", body)
    retry = clock(1_700_000_030.5)
    assert text == f"3f2a1b2c… upload failed (2 attempts): HTTP 503; retry at {retry}"


def test_permanent_upload_failure_says_so() -> None:
    body = {"id": RID, "error": "HTTP 400 bad report", "permanent": True, "attempts": 1,
            "next_attempt": None}
    assert describe("report.failed", body) == (
        "3f2a1b2c… FAILED for good after 1 attempt: HTTP 400 bad report"
    )


def test_paused_queue_is_flagged_and_short_ids_stay_whole() -> None:
    text = describe("queue.stats", {"pending": 0, "failed": 0, "completed": 0, "paused": True})
    assert text == "0 pending, 0 failed, 0 completed, 0 in flight, 0 uploaded; PAUSED"
    assert describe("report.uploaded", {"id": "r1", "attempts": 3, "latency_ms": 5}) == (
        "r1 after 3 attempts, 5 ms"
    )


def test_pipeline_event_missing_a_field_falls_back_to_its_fields() -> None:
    assert describe("report.uploaded", {"id": "r1"}) == 'id="r1"'


def test_a_posix_name_with_an_escaped_byte_is_shown_whole() -> None:
    # A file name that is not UTF-8 travels as \xNN text; the backslash is no separator there.
    body = {"converter": "json", "path": "/data/pending/caf\\xe9-latin1.json", "source": "/w/x"}
    line = format_event(envelope("file.pending", body, src="watcher"))
    assert "caf\\xe9-latin1.json → pending (json)" in line


def test_events_hides_heartbeats_unless_all_or_a_topic_asks() -> None:
    from wats.cli.events_cmd import shown

    for beat in ("worker.heartbeat", "supervisor.heartbeat"):
        assert not shown(beat, show_all=False, topics=None)
        assert shown(beat, show_all=True, topics=None)
        assert shown(beat, show_all=False, topics=[beat])
    assert shown("supervisor.worker.exited", show_all=False, topics=None)
    assert shown("connection.status", show_all=False, topics=[])


def test_duplicates_and_id_conflicts_say_what_happened_to_the_report() -> None:
    own, new = "3f2a1b2c" + "0" * 24, "9d8e7f6a" + "1" * 24
    file = {"converter": "c", "confidence": 1.0}
    again = {**file, "path": "/done/again.json", "report_ids": [own], "duplicates": [own]}
    assert describe("file.converted", again).startswith(
        "again.json → no new report: already delivered as 3f2a1b2c…"
    )
    mixed = {**file, "path": "b.json", "report_ids": [own, new], "duplicates": [own]}
    assert "b.json → 1 new report, 1 already delivered" in describe("file.converted", mixed)
    duplicate = {"id": own, "converter": "c", "source": "again.json", "state": "completed",
                 "earlier_source": "/done/a.json"}
    assert describe("report.duplicate", duplicate) == (
        "3f2a1b2c… from again.json is a duplicate: already delivered from a.json"
    )
    conflict = {"id": new, "own_id": own, "converter": "c", "source": "t2.json",
                "earlier_state": "completed", "earlier_source": "t1.json"}
    assert describe("report.id_conflict", conflict) == (
        "3f2a1b2c… from t2.json is taken by another report (completed, from t1.json); "
        "queued as 9d8e7f6a… instead"
    )
