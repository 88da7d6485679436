"""Small parts of the sandbox and the converter worker, without processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wats.converters.sandbox import SandboxLimits, SandboxOutcome, _pack, _read_message
from wats.workers.attempts import read_record
from wats.workers.converter import error_file_for


def test_limits_refuse_values_that_would_break_the_child():
    with pytest.raises(ValueError, match="wall_seconds"):
        SandboxLimits(wall_seconds=0)
    with pytest.raises(ValueError, match="open_files"):
        SandboxLimits(open_files=3)
    with pytest.raises(ValueError, match="address_space_mb"):
        SandboxLimits(address_space_mb=0)


def test_messages_round_trip_through_the_length_prefixed_framing():
    read, write = os.pipe()
    try:
        os.write(write, _pack({"op": "convert", "reports": [{"id": "x"}], "n": 1.5}))
        os.close(write)
        assert _read_message(read) == {"op": "convert", "reports": [{"id": "x"}], "n": 1.5}
        assert _read_message(read) is None  # clean EOF between messages
    finally:
        os.close(read)


def test_a_stream_cut_inside_a_message_is_an_error_not_a_message():
    read, write = os.pipe()
    try:
        os.write(write, _pack({"op": "x"})[:-1])
        os.close(write)
        with pytest.raises(EOFError):
            _read_message(read)
    finally:
        os.close(read)


def test_outcome_from_the_wire_ignores_unknown_keys():
    outcome = SandboxOutcome.from_wire({"ok": False, "failure": "crash", "future": 1})
    assert outcome.failure == "crash" and not outcome.ok


def test_reason_file_sits_beside_the_moved_file(tmp_path: Path):
    assert error_file_for(tmp_path / "r (1).xml") == tmp_path / "r (1).xml.error.json"


def test_attempt_record_reads_missing_as_none_old_counts_as_worker_deaths_garbage_as_one(
    tmp_path: Path,
):
    counter = tmp_path / "x.attempts.json"
    assert read_record(counter).attempts == 0
    counter.write_text('{"attempts": 2, "file": "a.txt"}')  # an earlier version's record
    assert (read_record(counter).worker_deaths, read_record(counter).sandbox_deaths) == (2, 0)
    counter.write_text("not json")
    assert read_record(counter).worker_deaths == 1
