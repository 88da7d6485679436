"""wats.queue.ReportQueue: every operation, counts from the folders, retention, crash repair."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from wats.config.models import ClientConfig
from wats.config.paths import InstancePaths
from wats.fsutil import atomic_write
from wats.queue import ItemNotFound, QueueCounts, ReportQueue
from wats.queue.item import QueueMeta, encode_item


class Clock:
    """A settable clock so due times and ages are exact, not slept for."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_report(report_id: str | None = None) -> dict[str, Any]:
    return {"id": report_id or str(uuid.uuid4()), "type": "T", "pn": "PN-1", "sn": "SN-1"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(tmp_path: Path, clock: Clock) -> ReportQueue:
    return ReportQueue(tmp_path / "queue", clock=clock)


def enqueue(queue: ReportQueue, report: dict[str, Any] | None = None) -> str:
    report = report or make_report()
    assert queue.enqueue(report, converter="wsjf", source_file="/in/a.json", station="ST-1")
    return str(report["id"])


def test_a_new_queue_has_its_three_folders_and_counts_zero(queue: ReportQueue) -> None:
    assert sorted(p.name for p in queue.root.iterdir()) == ["completed", "failed", "pending"]
    assert queue.counts() == QueueCounts(0, 0, 0)


def test_enqueue_writes_one_file_with_meta_and_the_report(queue: ReportQueue, clock: Clock) -> None:
    report = make_report()
    assert queue.enqueue(report, converter="wsjf", source_file=Path("/in/a.json"), station="ST-1")
    path = queue.folder("pending") / f"{report['id']}.json"
    stored = json.loads(path.read_bytes())
    assert stored["report"] == report
    assert stored["meta"] == {
        "id": report["id"],
        "attempts": 0,
        "next_attempt": 0.0,
        "last_error": None,
        "source_file": "/in/a.json",
        "converter": "wsjf",
        "station": "ST-1",
        "source_sha256": None,
        "queued_at": clock.now,
        "uploaded_at": None,
        "failed_at": None,
    }
    assert [p.name for p in queue.folder("pending").iterdir()] == [path.name]


def test_enqueueing_a_pending_id_again_is_a_no_op(queue: ReportQueue) -> None:
    report = make_report()
    report_id = enqueue(queue, report)
    queue.mark_retry(report_id, "timeout", next_attempt=5.0)
    again = {**report, "sn": "changed"}
    assert not queue.enqueue(again, converter="x", source_file=None, station=None)
    item = queue.get(report_id)
    assert item is not None and item.report["sn"] == "SN-1" and item.attempts == 1


def test_enqueueing_a_completed_id_again_is_a_no_op(queue: ReportQueue) -> None:
    report = make_report()
    report_id = enqueue(queue, report)
    queue.mark_uploaded(report_id)
    assert not queue.enqueue(report, converter="wsjf", source_file=None, station=None)
    assert queue.counts() == QueueCounts(pending=0, failed=0, completed=1)


def test_enqueueing_a_failed_id_again_is_a_no_op_until_retried(queue: ReportQueue) -> None:
    report = make_report()
    report_id = enqueue(queue, report)
    queue.mark_failed(report_id, "400: bad report")
    assert not queue.enqueue(report, converter="wsjf", source_file=None, station=None)
    assert queue.counts() == QueueCounts(pending=0, failed=1, completed=0)


def test_the_id_is_matched_case_insensitively(queue: ReportQueue) -> None:
    report_id = str(uuid.uuid4())
    enqueue(queue, make_report(report_id))
    upper = make_report(report_id.upper())
    assert not queue.enqueue(upper, converter=None, source_file=None, station=None)
    assert queue.get(report_id.upper()) is not None


@pytest.mark.parametrize("bad", [None, "", "../../etc/passwd", "not-a-uuid", 42])
def test_a_report_without_a_uuid_id_is_refused(queue: ReportQueue, bad: object) -> None:
    with pytest.raises(ValueError, match="UUID"):
        queue.enqueue({"id": bad}, converter=None, source_file=None, station=None)
    assert queue.counts() == QueueCounts()


def test_a_report_that_is_not_a_dict_is_refused(queue: ReportQueue) -> None:
    with pytest.raises(TypeError):
        queue.enqueue([1, 2], converter=None, source_file=None, station=None)  # type: ignore[arg-type]


def test_due_returns_pending_reports_oldest_first_up_to_the_limit(
    queue: ReportQueue, clock: Clock
) -> None:
    ids = []
    for _ in range(5):
        ids.append(enqueue(queue))
        clock.now += 1
    assert [i.id for i in queue.due()] == ids
    assert [i.id for i in queue.due(limit=2)] == ids[:2]
    item = queue.due(limit=1)[0]
    assert item.state == "pending" and item.report["id"] == ids[0] and item.meta.station == "ST-1"


def test_due_skips_reports_waiting_for_their_next_attempt(queue: ReportQueue, clock: Clock) -> None:
    first = enqueue(queue)
    clock.now += 1  # queued a second apart: the order is by queued_at, not by random id
    second = enqueue(queue)
    queue.mark_retry(first, "503", next_attempt=clock.now + 10)
    assert [i.id for i in queue.due()] == [second]
    assert [i.id for i in queue.due(now=clock.now + 10)] == [first, second]
    assert queue.next_due_time() == 0.0
    queue.mark_uploaded(second)
    assert queue.next_due_time() == clock.now + 10


def test_next_due_time_of_an_empty_queue_is_none(queue: ReportQueue) -> None:
    assert queue.next_due_time() is None


def test_due_sees_a_rewritten_file_even_when_it_was_cached(
    queue: ReportQueue, clock: Clock
) -> None:
    report_id = enqueue(queue)
    assert [i.id for i in queue.due()] == [report_id]
    queue.mark_retry(report_id, "503", next_attempt=clock.now + 60)
    assert queue.due() == []
    other = ReportQueue(queue.root, clock=clock)  # another process retries it
    other.mark_retry(report_id, "503", next_attempt=0.0)
    assert [i.id for i in queue.due()] == [report_id]


def test_mark_retry_counts_the_attempt_and_keeps_the_error(queue: ReportQueue) -> None:
    report_id = enqueue(queue)
    queue.mark_retry(report_id, "connect timeout", next_attempt=123.0)
    updated = queue.mark_retry(report_id, "HTTP 503", next_attempt=456.0)
    assert (updated.attempts, updated.last_error, updated.next_attempt) == (2, "HTTP 503", 456.0)
    stored = queue.get(report_id)
    assert stored is not None and stored.meta == updated.meta and stored.state == "pending"


def test_mark_uploaded_moves_the_report_to_completed(queue: ReportQueue, clock: Clock) -> None:
    report_id = enqueue(queue)
    clock.now += 3
    queue.mark_uploaded(report_id)
    item = queue.get(report_id)
    assert item is not None and item.state == "completed" and item.meta.uploaded_at == clock.now
    assert queue.counts() == QueueCounts(pending=0, failed=0, completed=1)
    assert queue.due() == []


def test_mark_uploaded_deletes_the_report_when_completed_are_not_kept(
    tmp_path: Path, clock: Clock
) -> None:
    queue = ReportQueue(tmp_path, keep_completed=False, clock=clock)
    report_id = enqueue(queue)
    queue.mark_uploaded(report_id)
    assert queue.get(report_id) is None
    assert queue.counts() == QueueCounts()


def test_marking_a_report_that_is_not_pending_raises_item_not_found(queue: ReportQueue) -> None:
    missing = str(uuid.uuid4())
    for operation in (
        lambda: queue.mark_uploaded(missing),
        lambda: queue.mark_retry(missing, "x", 0.0),
        lambda: queue.mark_failed(missing, "x"),
    ):
        with pytest.raises(ItemNotFound) as caught:
            operation()
        assert caught.value.report_id == missing and "not pending" in str(caught.value)


def test_mark_failed_moves_the_report_to_failed_with_the_message(
    queue: ReportQueue, clock: Clock
) -> None:
    report_id = enqueue(queue)
    failed = queue.mark_failed(report_id, "400: missing serial number")
    assert failed.state == "failed" and failed.path.parent == queue.folder("failed")
    assert failed.last_error == "400: missing serial number"
    assert failed.meta.failed_at == clock.now and failed.attempts == 1
    assert queue.counts() == QueueCounts(pending=0, failed=1, completed=0)
    assert [i.id for i in queue.list("failed")] == [report_id]


def test_retry_sends_a_failed_report_again_with_attempts_reset(queue: ReportQueue) -> None:
    report_id = enqueue(queue)
    queue.mark_retry(report_id, "503", next_attempt=1e12)
    queue.mark_failed(report_id, "too many attempts")
    assert queue.retry(report_id)
    item = queue.get(report_id)
    assert item is not None and item.state == "pending"
    assert (item.attempts, item.next_attempt, item.meta.failed_at) == (0, 0.0, None)
    assert item.last_error == "too many attempts"
    assert [i.id for i in queue.due()] == [report_id]


def test_retry_of_a_report_that_is_not_failed_returns_false(queue: ReportQueue) -> None:
    report_id = enqueue(queue)
    assert not queue.retry(report_id)
    assert not queue.retry(str(uuid.uuid4()))


def test_retry_all_failed_returns_how_many_went_back(queue: ReportQueue) -> None:
    ids = [enqueue(queue) for _ in range(3)]
    for report_id in ids[:2]:
        queue.mark_failed(report_id, "400")
    assert queue.retry_all_failed() == 2
    assert queue.counts() == QueueCounts(pending=3, failed=0, completed=0)
    assert queue.retry_all_failed() == 0


def test_get_finds_a_report_in_any_folder_and_none_when_unknown(queue: ReportQueue) -> None:
    a, b, c = enqueue(queue), enqueue(queue), enqueue(queue)
    queue.mark_uploaded(b)
    queue.mark_failed(c, "400")
    states = {rid: item.state for rid in (a, b, c) if (item := queue.get(rid)) is not None}
    assert states == {a: "pending", b: "completed", c: "failed"}
    assert queue.get(str(uuid.uuid4())) is None


def test_list_returns_every_report_in_a_state_oldest_first(
    queue: ReportQueue, clock: Clock
) -> None:
    ids = []
    for _ in range(3):
        ids.append(enqueue(queue))
        clock.now -= 10  # later enqueued, yet older queued_at: order follows queued_at
    assert [i.id for i in queue.list("pending")] == list(reversed(ids))
    assert queue.list("completed") == []


def test_counts_come_from_the_folders_not_from_memory(queue: ReportQueue, clock: Clock) -> None:
    enqueue(queue)
    other = ReportQueue(queue.root, clock=clock)
    enqueue(other)
    (queue.folder("pending") / ".x.json.abc.tmp").write_text("{")  # temp files do not count
    (queue.folder("pending") / "notes.txt").write_text("x")  # nor strays
    assert queue.counts() == QueueCounts(pending=2, failed=0, completed=0)
    for path in queue.folder("pending").glob("*.json"):
        path.unlink()
    assert queue.counts() == QueueCounts()


def test_an_unreadable_queue_file_is_skipped_not_fatal(queue: ReportQueue) -> None:
    good = enqueue(queue)
    bad = str(uuid.uuid4())
    (queue.folder("pending") / f"{bad}.json").write_text("{ not json")
    assert [i.id for i in queue.due()] == [good]
    assert [i.id for i in queue.list("pending")] == [good]
    assert queue.get(bad) is None
    assert queue.counts().pending == 2  # honest: the file is there


def completed_with_mtime(queue: ReportQueue, age_s: float, clock: Clock) -> str:
    report_id = enqueue(queue)
    queue.mark_uploaded(report_id)
    stamp = clock.now - age_s
    os.utime(queue.path_for(report_id, "completed"), (stamp, stamp))
    return report_id


def test_purge_completed_keeps_the_newest_max_count(queue: ReportQueue, clock: Clock) -> None:
    ids = [completed_with_mtime(queue, age, clock) for age in (50, 40, 30, 20, 10)]
    assert queue.purge_completed(max_count=2) == 3
    assert sorted(i.id for i in queue.list("completed")) == sorted(ids[3:])


def test_purge_completed_deletes_reports_older_than_max_age(
    queue: ReportQueue, clock: Clock
) -> None:
    old = completed_with_mtime(queue, 3 * 86400, clock)
    new = completed_with_mtime(queue, 60, clock)
    assert queue.purge_completed(max_age_s=86400) == 1
    assert [i.id for i in queue.list("completed")] == [new]
    assert queue.get(old) is None


def test_purge_completed_with_no_limit_deletes_all_completed_only(
    queue: ReportQueue, clock: Clock
) -> None:
    for age in (1, 2, 3):
        completed_with_mtime(queue, age, clock)
    pending = enqueue(queue)
    assert queue.purge_completed() == 3
    assert queue.counts() == QueueCounts(pending=1, failed=0, completed=0)
    assert queue.get(pending) is not None


def test_enforce_retention_applies_the_configured_limits(tmp_path: Path, clock: Clock) -> None:
    queue = ReportQueue(tmp_path, completed_max_count=2, completed_max_age_s=100, clock=clock)
    for age in (500, 30, 20, 10):
        completed_with_mtime(queue, age, clock)
    assert queue.enforce_retention() == 2
    assert queue.counts().completed == 2
    unlimited = ReportQueue(tmp_path, clock=clock)
    assert unlimited.enforce_retention() == 0


def test_for_config_uses_the_queue_section_and_instance_paths(tmp_path: Path) -> None:
    cfg = ClientConfig.model_validate(
        {
            "paths": {"data_dir": str(tmp_path / "data")},
            "queue": {"keep_completed": False, "completed_max_count": 0},
        }
    )
    queue = ReportQueue.for_config(cfg)
    assert queue.root == tmp_path / "data" / "queue" == InstancePaths.for_config(cfg).queue_dir
    assert not queue.keep_completed
    assert queue.completed_max_count is None  # 0 in the file means no limit
    assert queue.completed_max_age_s == 30 * 86400
    moved = cfg.model_copy(update={"queue": cfg.queue.model_copy(update={"folder": "/q"})})
    assert InstancePaths.for_config(moved).queue_dir == Path("/q")


def test_queue_section_refuses_a_retry_cap_below_the_base() -> None:
    with pytest.raises(ValueError, match="retry_base_seconds"):
        ClientConfig.model_validate({"queue": {"retry_base_seconds": 10, "retry_max_seconds": 5}})


# ---------------------------------------------------------------- crash repair


def test_a_crash_after_recording_an_upload_never_hands_the_report_out_again(
    queue: ReportQueue,
) -> None:
    report_id = enqueue(queue)
    pending = queue.path_for(report_id, "pending")
    saved = pending.read_bytes()
    queue.mark_uploaded(report_id)
    pending.write_bytes(saved)  # as if killed after writing completed/, before the unlink
    assert queue.due() == []
    assert queue.counts() == QueueCounts(pending=0, failed=0, completed=1)


def test_recover_finishes_interrupted_moves_and_removes_stale_temp_files(
    queue: ReportQueue, clock: Clock
) -> None:
    uploaded, failing, retried = enqueue(queue), enqueue(queue), enqueue(queue)
    saved = queue.path_for(uploaded, "pending").read_bytes()
    queue.mark_uploaded(uploaded)
    queue.path_for(uploaded, "pending").write_bytes(saved)
    # killed between rewriting with failed_at and the move to failed/
    item = queue.get(failing)
    assert item is not None
    atomic_write(item.path, encode_item(item.with_meta(failed_at=clock.now).meta, item.report))
    # killed between rewriting a retried report and the move back to pending/
    queue.mark_failed(retried, "400")
    failed = queue.get(retried)
    assert failed is not None
    atomic_write(failed.path, encode_item(failed.with_meta(failed_at=None).meta, failed.report))
    stale = queue.folder("pending") / ".x.json.dead.tmp"
    stale.write_text("{")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    assert queue.recover() == 4
    assert queue.counts() == QueueCounts(pending=1, failed=1, completed=1)
    states = {rid: i.state for rid in (uploaded, failing, retried) if (i := queue.get(rid))}
    assert states == {uploaded: "completed", failing: "failed", retried: "pending"}
    assert not stale.exists()
    assert queue.recover() == 0


def test_due_moves_a_half_failed_report_on_instead_of_uploading_it(
    queue: ReportQueue, clock: Clock
) -> None:
    report_id = enqueue(queue)
    item = queue.get(report_id)
    assert item is not None
    atomic_write(item.path, encode_item(item.with_meta(failed_at=clock.now).meta, item.report))
    assert queue.due() == []
    assert queue.counts() == QueueCounts(pending=0, failed=1, completed=0)


def test_meta_from_a_newer_writer_with_extra_keys_still_reads(queue: ReportQueue) -> None:
    report_id = str(uuid.uuid4())
    meta = {**QueueMeta(id=report_id).to_json(), "priority": 3}
    path = queue.folder("pending") / f"{report_id}.json"
    path.write_text(json.dumps({"meta": meta, "report": make_report(report_id)}))
    item = queue.get(report_id)
    assert item is not None and item.id == report_id


# ---------------------------------------------------------------- cheap reads and state changes


def test_the_file_starts_with_the_meta_and_holds_the_report_bytes_as_posted(
    queue: ReportQueue,
) -> None:
    report = {**make_report(), "name": "Prüfung ✓"}
    report_id = enqueue(queue, report)
    data = queue.path_for(report_id, "pending").read_bytes()
    assert data.startswith(b'{"meta":{"id":"' + report_id.encode())
    body = json.dumps(report, ensure_ascii=False, separators=(",", ":")).encode()
    assert data.endswith(b',"report":' + body + b"}")
    item = queue.get(report_id)
    assert item is not None and item.report_bytes() == body


def test_due_and_list_read_metas_only_and_the_body_on_demand(queue: ReportQueue) -> None:
    report = make_report()
    enqueue(queue, report)
    [due] = queue.due()
    [listed] = queue.list("pending")
    assert due.body is None and listed.body is None  # no report was read
    assert due.report_bytes() == listed.report_bytes()
    assert due.report == report


def test_report_bytes_of_a_report_that_left_its_folder_raises_item_not_found(
    queue: ReportQueue,
) -> None:
    report_id = enqueue(queue)
    [item] = queue.due()
    queue.mark_uploaded(report_id)
    with pytest.raises(ItemNotFound):
        item.report_bytes()


def test_mark_uploaded_is_a_rename_that_keeps_the_file_and_records_the_time(
    queue: ReportQueue, clock: Clock
) -> None:
    report_id = enqueue(queue)
    pending = queue.path_for(report_id, "pending")
    inode, data = pending.stat().st_ino, pending.read_bytes()
    clock.now += 42
    queue.mark_uploaded(report_id)
    completed = queue.path_for(report_id, "completed")
    assert completed.stat().st_ino == inode and completed.read_bytes() == data
    assert completed.stat().st_mtime == clock.now
    item = queue.get(report_id)
    assert item is not None and item.meta.uploaded_at == clock.now
    [listed] = queue.list("completed")
    assert listed.meta.uploaded_at == clock.now


def test_rewrites_keep_the_report_bytes_untouched(queue: ReportQueue) -> None:
    report_id = enqueue(queue)
    body = queue.path_for(report_id, "pending").read_bytes().split(b',"report":', 1)[1]
    queue.mark_retry(report_id, "x" * 10_000, next_attempt=0.0)  # a meta longer than one read
    queue.mark_failed(report_id, "HTTP 400: ü")
    queue.retry(report_id)
    [item] = queue.due()
    assert item.last_error == "HTTP 400: ü"
    assert queue.path_for(report_id, "pending").read_bytes().endswith(b',"report":' + body)


def test_a_long_meta_is_read_whole(queue: ReportQueue) -> None:
    report_id = enqueue(queue)
    queue.mark_retry(report_id, "e" * 20_000, next_attempt=0.0)
    [item] = queue.due()
    assert item.last_error == "e" * 20_000 and item.attempts == 1


def test_a_hand_written_file_in_another_layout_still_reads_and_uploads(
    queue: ReportQueue,
) -> None:
    report_id = str(uuid.uuid4())
    report = make_report(report_id)
    path = queue.folder("pending") / f"{report_id}.json"
    path.write_text(json.dumps({"report": report, "meta": QueueMeta(id=report_id).to_json()}))
    [item] = queue.due()
    assert json.loads(item.report_bytes()) == report
    queue.mark_retry(report_id, "503", next_attempt=0.0)  # rewritten in the usual layout
    assert path.read_bytes().startswith(b'{"meta":')
    [again] = queue.due()
    assert again.report == report and again.attempts == 1
