"""The msgpack codec: what goes in comes out, and anything else is refused with ProtocolError."""

from __future__ import annotations

import time
import uuid

import msgpack
import pytest

from wats.protocol import topics
from wats.protocol.codec import MAX_FRAME_BYTES, ProtocolError, decode, encode, make_envelope
from wats.protocol.envelope import PROTOCOL_VERSION, Envelope, new_message_id


def heartbeat() -> Envelope:
    body = {"worker": "health", "pid": 4242, "progress": 7, "ready": True, "detail": {"k": [1, 2]}}
    return make_envelope(topics.WORKER_HEARTBEAT, body, "health", 3)


def raw_envelope(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "v": PROTOCOL_VERSION,
        "type": "worker.heartbeat",
        "id": uuid.uuid4().hex,
        "ts": 1700000000.5,
        "src": "health",
        "seq": 1,
        "body": {},
    }
    fields.update(changes)
    return fields


def test_envelope_survives_encode_and_decode_unchanged() -> None:
    env = heartbeat()
    assert decode(encode(env)) == env


def test_make_envelope_stamps_version_fresh_id_and_current_time() -> None:
    before = time.time()
    first, second = heartbeat(), heartbeat()
    assert first.v == PROTOCOL_VERSION == 1
    assert len(first.id) == 32 and int(first.id, 16) >= 0
    assert first.id != second.id
    assert before <= first.ts <= time.time()
    assert (first.src, first.seq, first.type) == ("health", 3, "worker.heartbeat")


def test_binary_and_nested_body_values_round_trip() -> None:
    body = {"blob": b"\x00\xff", "nested": {"list": [1, 2.5, None, "x"]}, "big": 2**62}
    env = make_envelope("custom.kind", body, "test", 1)
    assert decode(encode(env)).body == body


def test_integer_timestamp_from_another_client_is_accepted_as_float() -> None:
    env = decode(msgpack.packb(raw_envelope(ts=1700000000)))
    assert env.ts == 1700000000.0


@pytest.mark.parametrize(
    "frame",
    [b"", b"\xc1", b"\x92\x01", b"not msgpack at all \xff\xfe", b"\xdf\xff\xff\xff\xff"],
    ids=["empty", "reserved-byte", "truncated-array", "text", "huge-map-header"],
)
def test_garbage_frame_is_refused_as_malformed(frame: bytes) -> None:
    with pytest.raises(ProtocolError) as err:
        decode(frame)
    assert err.value.kind in {"malformed", "shape"}
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("payload", [[1, 2, 3], "text", 42, None])
def test_frame_that_is_not_a_map_is_refused_as_wrong_shape(payload: object) -> None:
    with pytest.raises(ProtocolError) as err:
        decode(msgpack.packb(payload))
    assert err.value.kind == "shape"


@pytest.mark.parametrize(
    "changes",
    [
        {"type": 5},
        {"type": ""},
        {"seq": "1"},
        {"seq": -1},
        {"ts": "yesterday"},
        {"body": [1, 2]},
        {"src": None},
        {"id": ""},
    ],
    ids=[
        "type-int",
        "type-empty",
        "seq-str",
        "seq-negative",
        "ts-str",
        "body-list",
        "src-none",
        "id-empty",
    ],
)
def test_envelope_with_bad_field_is_refused_naming_the_field(changes: dict[str, object]) -> None:
    with pytest.raises(ProtocolError) as err:
        decode(msgpack.packb(raw_envelope(**changes)))
    assert err.value.kind == "shape"
    assert next(iter(changes)) in str(err.value)


@pytest.mark.parametrize("field", ["type", "id", "ts", "src", "seq", "body"])
def test_envelope_missing_a_field_is_refused_rather_than_defaulted(field: str) -> None:
    fields = raw_envelope()
    del fields[field]
    with pytest.raises(ProtocolError, match=field) as err:
        decode(msgpack.packb(fields))
    assert err.value.kind == "shape"


@pytest.mark.parametrize("version", [0, 2, 99])
def test_unknown_version_is_refused(version: int) -> None:
    with pytest.raises(ProtocolError) as err:
        decode(msgpack.packb(raw_envelope(v=version)))
    assert err.value.kind == "version"
    assert str(version) in str(err.value)


@pytest.mark.parametrize("version", [None, "1", 1.0, True])
def test_version_that_is_not_an_integer_is_refused(version: object) -> None:
    with pytest.raises(ProtocolError) as err:
        decode(msgpack.packb(raw_envelope(v=version)))
    assert err.value.kind == "shape"


def test_oversized_frame_is_refused_before_parsing() -> None:
    frame = msgpack.packb(raw_envelope(body={"pad": "x" * MAX_FRAME_BYTES}))
    with pytest.raises(ProtocolError) as err:
        decode(frame)
    assert err.value.kind == "oversized"


def test_frame_size_limit_can_be_lowered() -> None:
    frame = encode(heartbeat())
    with pytest.raises(ProtocolError):
        decode(frame, max_bytes=len(frame) - 1)
    assert decode(frame, max_bytes=len(frame)).type == "worker.heartbeat"


def test_unknown_envelope_fields_from_a_newer_sender_are_ignored() -> None:
    env = decode(msgpack.packb(raw_envelope(trace="abc")))
    assert env.type == "worker.heartbeat"


def test_encoding_an_oversized_body_fails_at_the_sender() -> None:
    env = make_envelope("custom.kind", {"pad": "x" * MAX_FRAME_BYTES}, "test", 1)
    with pytest.raises(ProtocolError) as err:
        encode(env)
    assert err.value.kind == "encode"


def test_encoding_a_value_msgpack_cannot_carry_fails_with_protocol_error() -> None:
    env = make_envelope("custom.kind", {"when": object()}, "test", 1)
    with pytest.raises(ProtocolError) as err:
        encode(env)
    assert err.value.kind == "encode"


def test_rejection_message_never_quotes_frame_contents() -> None:
    secret = "Basic c2VjcmV0LXRva2Vu"
    with pytest.raises(ProtocolError) as err:
        decode(msgpack.packb(raw_envelope(seq=secret)))
    assert secret not in str(err.value)
    assert err.value.__cause__ is None


def test_message_ids_are_random_uuid4_hex() -> None:
    ids = {new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in list(ids)[:50]:
        parsed = uuid.UUID(hex=value)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, value)
