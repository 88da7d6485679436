"""Control helpers without sockets: replies name their request, failures always explain."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from wats.protocol import topics
from wats.protocol.bus import ControlFailed, Reply, decode_control, error_reply, reply_envelope
from wats.protocol.codec import ProtocolError, encode, make_envelope
from wats.protocol.envelope import Envelope
from wats.protocol.messages import ErrorCode, ReplyError


def request() -> Envelope:
    return make_envelope(topics.CONTROL_REQUEST, {"command": "status"}, "cli:7", 0)


def test_reply_names_the_request_id_and_is_unsequenced() -> None:
    req = request()
    reply = reply_envelope(req, True, result={"workers": []}, src="supervisor")
    assert reply.type == topics.CONTROL_REPLY
    assert reply.body == {
        "request_id": req.id,
        "ok": True,
        "result": {"workers": []},
        "error": None,
    }
    assert (reply.src, reply.seq) == ("supervisor", 0)
    assert reply.id != req.id


def test_error_reply_carries_code_and_reason() -> None:
    reply = error_reply(request(), ErrorCode.UNKNOWN_WORKER, "no worker 'x'", src="supervisor")
    assert reply.body["ok"] is False
    assert reply.body["error"] == {"code": "unknown_worker", "reason": "no worker 'x'"}


def test_reply_accepts_a_reply_error_model() -> None:
    reply = reply_envelope(request(), False, error=ReplyError(code="timeout", reason="slow"))
    assert reply.body["error"] == {"code": "timeout", "reason": "slow"}


def test_a_failure_without_an_explanation_cannot_be_built() -> None:
    with pytest.raises(ValidationError):
        reply_envelope(request(), False)


def test_unwrap_returns_the_result_or_raises_the_error() -> None:
    ok = reply_envelope(request(), True, result=3)
    assert Reply(ok=True, result=3, error=None, envelope=ok).unwrap() == 3
    failed = Reply(
        ok=False, result=None, error=ReplyError(code="internal", reason="boom"), envelope=ok
    )
    with pytest.raises(ControlFailed, match="internal: boom") as err:
        failed.unwrap()
    assert (err.value.code, err.value.reason) == ("internal", "boom")


def test_control_frames_split_into_route_and_envelope() -> None:
    req = request()
    route, env = decode_control([b"id-1", b"", encode(req)])
    assert (route, env) == ([b"id-1"], req)
    assert decode_control([b"", encode(req)]) == ([], req)


@pytest.mark.parametrize(
    "frames", [[], [b"x"], [b"id", b"x", b"y"]], ids=["none", "one", "no-delimiter"]
)
def test_control_frames_without_the_delimiter_are_refused(frames: list[bytes]) -> None:
    with pytest.raises(ProtocolError) as err:
        decode_control(frames)
    assert err.value.kind == "shape"
