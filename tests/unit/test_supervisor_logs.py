"""Worker output lands in the instance log as structured events, not quoted JSON."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import structlog

from wats.supervisor.logs import capture_stream, configure_logging


def _captured_records(tmp_path: Path, output: bytes) -> list[dict]:
    log_file = tmp_path / "supervisor.jsonl"
    handle = configure_logging("debug", log_file, console=None)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, output)
    os.close(write_fd)
    thread = capture_stream("sync", 4242, "stderr", os.fdopen(read_fd, "rb"))
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert handle is not None
    handle.close()
    return [json.loads(line) for line in log_file.read_text("utf-8").splitlines()]


def test_worker_json_log_lines_are_relayed_with_their_fields_and_level(tmp_path: Path) -> None:
    line = {
        "worker": "sync",
        "processes": 11,
        "event": "reference data synced",
        "level": "warning",
        "timestamp": "2026-01-01T00:00:00Z",
    }
    records = _captured_records(tmp_path, (json.dumps(line) + "\n").encode())
    assert len(records) == 1
    record = records[0]
    assert record["event"] == "reference data synced"
    assert record["processes"] == 11
    assert record["level"] == "warning"
    assert record["worker"] == "sync" and record["pid"] == 4242 and record["stream"] == "stderr"
    assert record["worker_time"] == "2026-01-01T00:00:00Z"


def test_plain_worker_output_and_broken_json_are_logged_verbatim(tmp_path: Path) -> None:
    output = b"hello from print\n{not json\n" + b'{"no_event": 1}\n'
    records = _captured_records(tmp_path, output)
    assert [r["event"] for r in records] == ["hello from print", "{not json", '{"no_event": 1}']
    assert all(r["worker"] == "sync" for r in records)


def test_console_only_logging_writes_pretty_lines_and_no_file() -> None:
    console = io.StringIO()
    assert configure_logging("info", None, console=console) is None
    structlog.get_logger("test").info("worker started", worker="health")
    structlog.get_logger("test").debug("below the level")
    text = console.getvalue()
    assert "worker started" in text and "worker=health" in text
    assert "below the level" not in text
