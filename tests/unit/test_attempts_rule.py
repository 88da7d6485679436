"""The per-file counting rule (wats.workers.attempts): what counts against a file, and when it is
poison. Pure functions; the record file round trip uses a tmp folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wats.workers.attempts import (
    AttemptEnd,
    AttemptRecord,
    Bounds,
    PoisonCause,
    begin,
    classify,
    end,
    read_record,
    write_record,
)

BOUNDS = Bounds(max_sandbox_deaths=3, max_worker_deaths=10)


def _worker_killed_during(record: AttemptRecord) -> AttemptRecord:
    """Begin an attempt and 'die': the running record stays on disk as it was written."""
    started, cause = begin(record, BOUNDS)
    assert cause is None and started.running
    return started


def test_a_fresh_file_begins_its_first_attempt_marked_running() -> None:
    record, cause = begin(AttemptRecord(), BOUNDS)
    assert cause is None
    assert (record.running, record.sandbox_deaths, record.worker_deaths) == (True, 0, 0)


def test_worker_kills_never_count_towards_max_retries() -> None:
    record = AttemptRecord()
    for _ in range(BOUNDS.max_worker_deaths - 1):
        record = _worker_killed_during(record)
    record, cause = begin(record, BOUNDS)
    assert cause is None  # nine kills with the file in hand: still converted, at once
    assert record.sandbox_deaths == 0 and record.worker_deaths == BOUNDS.max_worker_deaths - 1


def test_a_file_that_takes_its_worker_down_every_time_is_poison_at_the_generous_bound() -> None:
    record = AttemptRecord()
    for _ in range(BOUNDS.max_worker_deaths):
        record = _worker_killed_during(record)
    record, cause = begin(record, BOUNDS)
    assert cause is PoisonCause.WORKER
    assert record.worker_deaths == BOUNDS.max_worker_deaths and not record.running


def test_sandbox_deaths_reach_poison_at_max_retries() -> None:
    record = AttemptRecord()
    causes = []
    for _ in range(BOUNDS.max_sandbox_deaths):
        record, cause = begin(record, BOUNDS)
        assert cause is None
        record, cause = end(record, AttemptEnd.SANDBOX_DIED, BOUNDS)
        causes.append(cause)
    assert causes == [None, None, PoisonCause.SANDBOX]
    assert record.sandbox_deaths == 3 and record.worker_deaths == 0 and not record.running


def test_a_fork_server_death_counts_with_the_worker_deaths_not_the_sandbox_ones() -> None:
    record, _ = begin(AttemptRecord(), BOUNDS)
    record, cause = end(record, AttemptEnd.FORK_SERVER_DIED, BOUNDS)
    assert cause is None
    assert (record.sandbox_deaths, record.worker_deaths, record.running) == (0, 1, False)
    tight = Bounds(max_sandbox_deaths=3, max_worker_deaths=1)
    record, cause = end(begin(AttemptRecord(), tight)[0], AttemptEnd.FORK_SERVER_DIED, tight)
    assert cause is PoisonCause.WORKER


def test_an_attempt_that_ended_while_we_lived_is_not_a_worker_death() -> None:
    record, _ = begin(AttemptRecord(), BOUNDS)
    record, cause = end(record, AttemptEnd.NOT_COUNTED, BOUNDS)
    assert cause is None and not record.running
    again, _ = begin(record, BOUNDS)
    assert again.worker_deaths == 0 and again.sandbox_deaths == 0


def test_the_two_counts_are_kept_apart_across_mixed_deaths() -> None:
    record = _worker_killed_during(AttemptRecord())
    record, _ = begin(record, BOUNDS)  # the kill is seen now
    record, cause = end(record, AttemptEnd.SANDBOX_DIED, BOUNDS)
    assert cause is None and (record.sandbox_deaths, record.worker_deaths) == (1, 1)
    assert record.attempts == 2


@pytest.mark.parametrize(
    ("failure", "detail", "expected"),
    [
        ("crash", {"fork_server_died": True}, AttemptEnd.FORK_SERVER_DIED),
        ("timeout", {"fork_server_died": True}, AttemptEnd.FORK_SERVER_DIED),
        ("crash", {"signal": 11, "signal_name": "SIGSEGV"}, AttemptEnd.SANDBOX_DIED),
        ("limit", {"signal": 24, "limit": "cpu_seconds"}, AttemptEnd.SANDBOX_DIED),
        ("timeout", {"wall_seconds": 4}, AttemptEnd.SANDBOX_DIED),
        ("limit", {"limit": "address_space"}, AttemptEnd.VERDICT),  # MemoryError: an answer
        ("limit", {"limit": "open_files"}, AttemptEnd.VERDICT),
        ("crash", {"exit_code": 3}, AttemptEnd.VERDICT),  # exited on purpose, no signal
        ("exception", {"exception": "ValueError"}, AttemptEnd.VERDICT),
        ("rejected", {}, AttemptEnd.VERDICT),
        (None, {}, AttemptEnd.VERDICT),
    ],
)
def test_classify_tells_a_death_on_the_file_from_a_verdict(failure, detail, expected) -> None:
    assert classify(failure, detail) is expected


def test_the_record_round_trips_and_a_missing_one_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "ab.attempts.json"
    assert read_record(path) == AttemptRecord()
    record = AttemptRecord(file="r.json", sandbox_deaths=1, worker_deaths=4, running=True)
    write_record(path, record)
    assert read_record(path) == record
    assert [p.name for p in tmp_path.iterdir()] == ["ab.attempts.json"]  # no temp file left


def test_an_old_counter_becomes_worker_deaths_and_junk_counts_once(tmp_path: Path) -> None:
    path = tmp_path / "old.attempts.json"
    path.write_text(json.dumps({"attempts": 2, "file": "r.json"}))
    assert read_record(path) == AttemptRecord(file="r.json", worker_deaths=2)
    path.write_text("not json")
    assert read_record(path) == AttemptRecord(worker_deaths=1)
    path.write_text(json.dumps({"sandbox_deaths": -4, "worker_deaths": "x", "running": True}))
    assert read_record(path) == AttemptRecord(sandbox_deaths=1, worker_deaths=1, running=True)
