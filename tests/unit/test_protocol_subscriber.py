"""Subscriber frame handling without a network: drops are counted, sequence gaps are seen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import zmq

from wats.protocol import topics
from wats.protocol.bus import Subscriber
from wats.protocol.codec import encode, make_envelope


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    ctx = zmq.Context()
    sub = Subscriber(ctx, "inproc://nobody-binds-this", [""])
    try:
        yield sub
    finally:
        sub.close()
        ctx.term()


def event(type_: str, body: dict[str, Any], src: str = "w", seq: int = 1) -> list[bytes]:
    return [type_.encode(), encode(make_envelope(type_, body, src, seq))]


def custom(src: str, seq: int, type_: str = "custom.tick") -> list[bytes]:
    return event(type_, {}, src, seq)


def test_valid_event_is_returned(subscriber: Subscriber) -> None:
    env = subscriber.handle_frames(event("custom.tick", {"n": 1}))
    assert env is not None and env.body == {"n": 1}
    assert subscriber.dropped == 0


def test_known_body_comes_back_with_defaults_filled_in(subscriber: Subscriber) -> None:
    body = {"worker": "w", "pid": 1, "progress": 0, "ready": True}
    env = subscriber.handle_frames(event(topics.WORKER_HEARTBEAT, body))
    assert env is not None and env.body["detail"] == {}


@pytest.mark.parametrize(
    ("frames", "kind"),
    [
        ([b"custom.tick"], "shape"),
        ([b"a", b"b", b"c"], "shape"),
        ([b"custom.tick", b"\xc1garbage"], "malformed"),
        ([b"custom.tick", msgpack.packb({"v": 7, "type": "custom.tick"})], "version"),
        ([b"custom.tick", msgpack.packb([1, 2])], "shape"),
        ([b"other.topic", encode(make_envelope("custom.tick", {}, "w", 1))], "shape"),
        (event(topics.WORKER_HEARTBEAT, {"worker": "w"}), "body"),
    ],
    ids=[
        "one-frame",
        "three-frames",
        "garbage",
        "version",
        "not-a-map",
        "topic-mismatch",
        "bad-body",
    ],
)
def test_invalid_frames_are_dropped_and_counted_by_cause(
    subscriber: Subscriber, frames: list[bytes], kind: str
) -> None:
    assert subscriber.handle_frames(frames) is None
    assert subscriber.dropped == 1
    assert subscriber.dropped_by_kind == {kind: 1}


def test_body_validation_can_be_switched_off(subscriber: Subscriber) -> None:
    subscriber.validate = False
    env = subscriber.handle_frames(event(topics.WORKER_HEARTBEAT, {"worker": "w"}))
    assert env is not None and env.body == {"worker": "w"}


def test_consecutive_sequence_numbers_are_no_gap(subscriber: Subscriber) -> None:
    for seq in (1, 2, 3):
        subscriber.handle_frames(custom("a", seq))
    assert subscriber.gaps == {}


def test_missing_sequence_numbers_are_counted_per_source(subscriber: Subscriber) -> None:
    for src, seq in [("a", 1), ("b", 1), ("a", 2), ("a", 5), ("b", 3), ("a", 6)]:
        subscriber.handle_frames(custom(src, seq))
    assert subscriber.gaps == {"a": 2, "b": 1}


def test_joining_a_stream_late_is_no_gap(subscriber: Subscriber) -> None:
    subscriber.handle_frames(custom("a", 40))
    subscriber.handle_frames(custom("a", 41))
    assert subscriber.gaps == {}


def test_publisher_restart_resets_the_sequence_without_a_gap(subscriber: Subscriber) -> None:
    for seq in (1, 2, 3, 1, 2):
        subscriber.handle_frames(custom("a", seq))
    assert subscriber.gaps == {}


def test_sequences_of_different_types_are_tracked_apart(subscriber: Subscriber) -> None:
    """A subscriber filtering by topic sees each type's own unbroken sequence."""
    for type_, seq in [("custom.a", 1), ("custom.b", 1), ("custom.a", 2), ("custom.b", 2)]:
        subscriber.handle_frames(custom("w", seq, type_))
    assert subscriber.gaps == {}


def test_unsequenced_messages_do_not_disturb_gap_tracking(subscriber: Subscriber) -> None:
    for seq in (1, 0, 2):
        subscriber.handle_frames(custom("a", seq))
    assert subscriber.gaps == {}
