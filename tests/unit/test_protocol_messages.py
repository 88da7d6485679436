"""Body models: every contract type has one, bad bodies are refused, unknown types pass through."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from wats.protocol import topics
from wats.protocol.messages import (
    ERROR_CODES,
    MESSAGE_MODELS,
    ConnectionStatus,
    ControlReply,
    ControlRequest,
    ErrorCode,
    WorkerHeartbeat,
    register_message,
    validate_body,
)

GOOD_BODIES: dict[str, dict[str, Any]] = {
    topics.WORKER_HEARTBEAT: {"worker": "sync", "pid": 10, "progress": 3, "ready": False},
    topics.SUPERVISOR_HEARTBEAT: {"pid": 1, "instance": "default"},
    topics.SUPERVISOR_WORKER_STARTED: {"worker": "sync", "pid": 10},
    topics.SUPERVISOR_WORKER_EXITED: {
        "worker": "sync",
        "pid": 10,
        "exit_code": None,
        "signal": 9,
        "reason": "killed",
    },
    topics.SUPERVISOR_WORKER_RESTARTING: {"worker": "sync", "attempt": 2, "delay": 0.2},
    topics.SUPERVISOR_WORKER_FAILED: {
        "worker": "sync",
        "restarts": 11,
        "window": 60.0,
        "retry_in": 300.0,
    },
    topics.SUPERVISOR_WORKER_STOPPED: {"worker": "sync"},
    topics.CONNECTION_STATUS: {
        "status": "OFFLINE",
        "url": "http://127.0.0.1:8080",
        "since": 1.5,
        "latency_ms": None,
        "error": "connection refused",
    },
    topics.SYNC_COMPLETED: {"processes": 4, "levels": 2, "product_groups": 0, "source": "cache"},
    topics.SYNC_FAILED: {"error": "timed out"},
    topics.CONTROL_REQUEST: {"command": "status"},
    topics.CONTROL_REPLY: {"request_id": "ab" * 16, "ok": True, "result": {"x": 1}},
    topics.FILE_DETECTED: {"converter": "wsjf", "path": "/in/a.json", "size": 10},
    topics.FILE_PENDING: {"converter": "wsjf", "path": "/p/a.json", "source": "/in/a.json"},
    topics.FILE_CONVERTED: {
        "converter": "wsjf",
        "path": "/p/a.json",
        "report_ids": ["ab" * 16],
        "confidence": 1.0,
    },
    topics.FILE_ALARM: {
        "converter": "csv",
        "path": "/p/a.csv",
        "confidence": 0.4,
        "threshold": 0.5,
    },
    topics.FILE_FAILED: {
        "converter": "wsjf",
        "path": "/e/a.json",
        "reason": "exception",
        "error_file": "/e/a.json.error.json",
    },
    topics.REPORT_QUEUED: {"id": "ab" * 16, "converter": "wsjf"},
    topics.REPORT_UPLOADED: {"id": "ab" * 16, "attempts": 1, "latency_ms": 12.5},
    topics.REPORT_FAILED: {"id": "ab" * 16, "error": "400", "permanent": True, "attempts": 1},
    topics.REPORT_DUPLICATE: {
        "id": "ab" * 16,
        "converter": "wsjf",
        "source": "a.json",
        "state": "completed",
    },
    topics.REPORT_ID_CONFLICT: {
        "id": "cd" * 16,
        "own_id": "ab" * 16,
        "converter": "wsjf",
        "source": "b.json",
        "earlier_state": "completed",
        "earlier_source": "a.json",
    },
    topics.QUEUE_STATS: {"pending": 3, "failed": 0, "completed": 10},
}


def test_every_contract_type_has_a_model_and_a_topic_constant() -> None:
    constants = {
        value for name, value in vars(topics).items() if name.isupper() and not value.endswith(".")
    }
    assert constants == set(MESSAGE_MODELS) == set(GOOD_BODIES)


@pytest.mark.parametrize("type_", sorted(GOOD_BODIES))
def test_good_body_validates_to_its_model(type_: str) -> None:
    model = validate_body(type_, GOOD_BODIES[type_])
    assert isinstance(model, MESSAGE_MODELS[type_])


@pytest.mark.parametrize("type_", sorted(GOOD_BODIES))
def test_body_missing_a_required_field_is_refused(type_: str) -> None:
    body = dict(GOOD_BODIES[type_])
    body.pop(next(iter(body)))
    with pytest.raises(ValidationError):
        validate_body(type_, body)


def test_defaults_fill_in_optional_fields() -> None:
    heartbeat = WorkerHeartbeat.model_validate(GOOD_BODIES[topics.WORKER_HEARTBEAT])
    assert heartbeat.detail == {}
    request = ControlRequest.model_validate({"command": "ping"})
    assert (request.args, request.target) == ({}, None)
    status = ConnectionStatus.model_validate({"status": "ONLINE", "url": "u", "since": 0.0})
    assert (status.latency_ms, status.error) == (None, None)


@pytest.mark.parametrize(
    ("type_", "changes"),
    [
        (topics.CONNECTION_STATUS, {"status": "online"}),
        (topics.SUPERVISOR_WORKER_EXITED, {"reason": "vanished"}),
        (topics.SYNC_COMPLETED, {"source": "disk"}),
        (topics.WORKER_HEARTBEAT, {"pid": "10"}),
        (topics.WORKER_HEARTBEAT, {"progress": -1}),
    ],
)
def test_body_with_a_value_outside_its_contract_is_refused(
    type_: str, changes: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        validate_body(type_, {**GOOD_BODIES[type_], **changes})


def test_unknown_type_keeps_the_raw_dict() -> None:
    body = {"anything": [1, 2]}
    assert validate_body("pipeline.file.pending", body) is body


def test_fields_added_by_a_newer_sender_are_kept() -> None:
    model = validate_body(topics.SYNC_FAILED, {"error": "x", "attempt": 3})
    assert model.model_dump() == {"error": "x", "attempt": 3}


def test_failed_reply_must_carry_an_error_and_ok_reply_must_not() -> None:
    with pytest.raises(ValidationError, match="needs an error"):
        ControlReply.model_validate({"request_id": "r", "ok": False})
    with pytest.raises(ValidationError, match="carries no error"):
        ControlReply.model_validate(
            {"request_id": "r", "ok": True, "error": {"code": "internal", "reason": "x"}}
        )
    reply = ControlReply.model_validate(
        {"request_id": "r", "ok": False, "error": {"code": "timeout", "reason": "no answer"}}
    )
    assert reply.error is not None and reply.error.code == ErrorCode.TIMEOUT


def test_error_codes_are_the_contract_set() -> None:
    expected = {
        "bad_request",
        "unknown_command",
        "unknown_worker",
        "worker_unavailable",
        "timeout",
        "forbidden",
        "internal",
    }
    assert expected == ERROR_CODES


def test_registering_a_new_type_makes_it_validated() -> None:
    class FilePending(BaseModel):
        path: str

    try:
        register_message("test.file.pending", FilePending)
        register_message("test.file.pending", FilePending)  # same model again: harmless
        assert isinstance(validate_body("test.file.pending", {"path": "a"}), FilePending)
        with pytest.raises(ValidationError):
            validate_body("test.file.pending", {})
    finally:
        MESSAGE_MODELS.pop("test.file.pending", None)


def test_registering_a_second_model_for_a_type_is_refused() -> None:
    class Other(BaseModel):
        pass

    with pytest.raises(ValueError, match="already has model WorkerHeartbeat"):
        register_message(topics.WORKER_HEARTBEAT, Other)
