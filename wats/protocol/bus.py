"""Small synchronous pyzmq helpers for the three things a process does on the bus.

- :class:`Publisher` sends events (PUB, connected to the supervisor's XSUB),
- :class:`Subscriber` receives events by topic prefix (SUB, connected to the XPUB),
- :class:`ControlClient` sends a control request and waits for its reply (DEALER, to the ROUTER).

Why helpers: every process must frame, validate and drop bad frames the same way; doing it once
here keeps worker modules about their job. Why synchronous: each socket has one owner thread
(ZeroMQ sockets are not thread-safe) that blocks in ``recv``/``poll`` or in a ``zmq.Poller`` loop,
which is all a worker or the CLI needs.

Wire framing (see docs/bus.md): an event is two frames ``[type, envelope]`` so SUB sockets filter
by type prefix inside ZeroMQ; a control message is ``[b"", envelope]`` (the empty delimiter that
REQ/REP use too), to which the ROUTER prepends the sender's identity.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import structlog
import zmq
from pydantic import BaseModel, ValidationError

from wats.protocol import topics
from wats.protocol.codec import ProtocolError, bad_fields, decode, encode, make_envelope
from wats.protocol.envelope import Envelope
from wats.protocol.messages import (
    MESSAGE_MODELS,
    ControlReply,
    ControlRequest,
    ReplyError,
)
from wats.protocol.security import CurveClientKeys

__all__ = [
    "ControlClient",
    "ControlFailed",
    "ControlTimeout",
    "DropCounter",
    "Publisher",
    "Reply",
    "Subscriber",
    "bind",
    "decode_control",
    "error_reply",
    "reply_envelope",
]

log = structlog.get_logger("wats.protocol.bus")

_DROP_LOG_INTERVAL_S = 1.0
"""At most one log line per second per drop cause, so a flood of garbage cannot flood the log."""


def bind(socket: zmq.Socket[Any], endpoint: str) -> str:
    """Bind ``socket`` and return the endpoint actually bound (the real port for ``tcp://…:*``),
    which is what :func:`wats.protocol.addresses.write_endpoints` must record."""
    socket.bind(endpoint)
    return socket.getsockopt_string(zmq.LAST_ENDPOINT)


_SNDMORE = int(zmq.SNDMORE)
_NOBLOCK = int(zmq.NOBLOCK)


def _recv_frames(socket: zmq.Socket[Any]) -> list[bytes]:
    """One multipart message without waiting (zmq.Again if none): like ``recv_multipart``, at
    two thirds of its cost, which matters at tens of thousands of events a second."""
    part = socket.recv(_NOBLOCK, copy=False)
    frames = [part.bytes]
    while part.more:
        part = socket.recv(_NOBLOCK, copy=False)
        frames.append(part.bytes)
    return frames


def _timeout_ms(deadline: float | None) -> int | None:
    if deadline is None:
        return None
    return max(0, math.ceil((deadline - time.monotonic()) * 1000))


class DropCounter:
    """Counts dropped frames by cause and logs them, rate-limited per cause.

    Every receiving side uses one (subscribers, control clients, the supervisor's router), so a
    peer flooding garbage costs one warning a second per cause, never a flood of log lines.
    ``reason`` must not quote frame contents.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.total = 0
        self.by_kind: dict[str, int] = {}
        self._last_log: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def drop(self, kind: str, reason: str) -> None:
        self.total += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._last_log.get(kind, -math.inf) < _DROP_LOG_INTERVAL_S:
            self._unlogged[kind] = self._unlogged.get(kind, 0) + 1
            return
        self._last_log[kind] = now
        log.warning(
            "bus.frame_dropped",
            socket=self.owner,
            kind=kind,
            reason=reason,
            suppressed=self._unlogged.pop(kind, 0),
        )


class Publisher:
    """Publishes events from one process (``src``) to the bus; one owner thread.

    ``publish`` validates the body against its type's model when there is one, so a bad event fails
    in the process that made it. Sequence numbers count per type from 1 (see
    :class:`~wats.protocol.envelope.Envelope`). A PUB socket never blocks: while nobody listens, or
    beyond the high-water mark, events are dropped — events are hints, and subscribers see the loss
    as a sequence gap.
    """

    def __init__(
        self,
        ctx: zmq.Context[Any],
        address: str,
        src: str,
        *,
        linger_ms: int = 1000,
        sndhwm: int | None = None,
    ) -> None:
        self.src = src
        self._seq: dict[str, int] = {}
        self.socket: zmq.Socket[Any] = ctx.socket(zmq.PUB)
        # Linger a little so the last events (e.g. "stopped") still go out after close().
        self.socket.setsockopt(zmq.LINGER, linger_ms)
        if sndhwm is not None:
            self.socket.setsockopt(zmq.SNDHWM, sndhwm)
        self.socket.connect(address)

    def publish(self, type: str, body: Mapping[str, Any] | BaseModel | None = None) -> Envelope:
        """Send one event and return its envelope.

        Raises ``pydantic.ValidationError`` when the body does not fit its type's model and
        :class:`~wats.protocol.codec.ProtocolError` when it cannot be encoded (too large, or a value
        msgpack cannot carry). Nothing is sent, and no sequence number used, in either case.
        """
        if isinstance(body, BaseModel):
            body = body.model_dump()
        data: dict[str, Any] = body if isinstance(body, dict) else dict(body or {})
        model = MESSAGE_MODELS.get(type)
        if model is not None:
            data = model.model_validate(data).model_dump()
        seq = self._seq.get(type, 0) + 1
        env = make_envelope(type, data, self.src, seq)
        frame = encode(env)
        # Two plain sends: send_multipart's per-frame checks cost more than the rest of publish.
        self.socket.send(type.encode(), _SNDMORE)
        self.socket.send(frame)
        self._seq[type] = seq
        return env

    def close(self, linger_ms: int | None = None) -> None:
        """Close the socket (``linger_ms`` overrides how long unsent events may still go out)."""
        self.socket.close(linger=linger_ms)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscriber:
    """Receives events whose type starts with one of ``prefixes``; one owner thread.

    ``prefixes=[""]`` receives everything; an empty list receives nothing until
    :meth:`subscribe`. Frames that are not valid envelopes, whose topic frame does not match their
    type, or whose body does not fit its type's model are logged (rate-limited) and dropped —
    counted in ``dropped`` and ``dropped_by_kind`` — and never raise. Known bodies are returned
    normalised by their model (defaults filled in).

    ``gaps[src]`` counts events from ``src`` that never arrived, seen as jumps in the per-type
    sequence numbers. A sequence that starts again at a lower number is a restarted publisher, not
    a gap; the first event seen of each (src, type) starts tracking, so joining late is no gap.

    Use :meth:`recv`, or put ``socket`` in a ``zmq.Poller`` and pass what ``recv_multipart`` gives
    to :meth:`handle_frames`. ``curve`` (keys from ``wats.protocol.security.load_client_keys``)
    is for a hub's network listener; local endpoints need none.
    """

    def __init__(
        self,
        ctx: zmq.Context[Any],
        address: str,
        prefixes: Sequence[str],
        *,
        validate: bool = True,
        rcvhwm: int | None = None,
        curve: CurveClientKeys | None = None,
    ) -> None:
        self.validate = validate
        self.gaps: dict[str, int] = {}
        self._last_seq: dict[tuple[str, str], int] = {}
        self._drops = DropCounter(f"sub:{address}")
        self.socket: zmq.Socket[Any] = ctx.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        if rcvhwm is not None:
            self.socket.setsockopt(zmq.RCVHWM, rcvhwm)
        for prefix in prefixes:
            self.subscribe(prefix)
        if curve is not None:  # a hub's network listener: authenticate and encrypt
            curve.apply(self.socket)
        self.socket.connect(address)

    @property
    def dropped(self) -> int:
        """How many frames were dropped as invalid since this subscriber was made."""
        return self._drops.total

    @property
    def dropped_by_kind(self) -> dict[str, int]:
        """Dropped frames by cause: oversized, malformed, shape, version, body."""
        return dict(self._drops.by_kind)

    def subscribe(self, prefix: str) -> None:
        """Also receive events whose type starts with ``prefix``."""
        self.socket.setsockopt(zmq.SUBSCRIBE, prefix.encode())

    def unsubscribe(self, prefix: str) -> None:
        """Stop receiving ``prefix`` (exactly as it was subscribed)."""
        self.socket.setsockopt(zmq.UNSUBSCRIBE, prefix.encode())

    def recv(self, timeout: float | None = None) -> Envelope | None:
        """The next valid event, or None when none arrived within ``timeout`` seconds
        (``None`` waits forever, ``0`` only takes what is already there)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                frames = _recv_frames(self.socket)
            except zmq.Again:
                if not self.socket.poll(_timeout_ms(deadline), zmq.POLLIN):
                    return None
                continue
            env = self.handle_frames(frames)
            if env is not None:
                return env
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def handle_frames(self, frames: Sequence[bytes]) -> Envelope | None:
        """The event in one received multipart message, or None if it was dropped."""
        if len(frames) != 2:
            self._drops.drop("shape", f"expected 2 frames [topic, envelope], got {len(frames)}")
            return None
        topic, frame = bytes(frames[0]), bytes(frames[1])
        try:
            env = decode(frame)
        except ProtocolError as exc:
            self._drops.drop(exc.kind, str(exc))
            return None
        if topic != env.type.encode():
            self._drops.drop("shape", f"topic frame does not match type {env.type!r}")
            return None
        if self.validate:
            model = MESSAGE_MODELS.get(env.type)
            if model is not None:
                try:
                    body = model.model_validate(env.body).model_dump()
                except ValidationError as exc:
                    reason = f"{env.type!r} from {env.src!r}: bad fields {bad_fields(exc)}"
                    self._drops.drop("body", reason)
                    return None
                env = env.model_copy(update={"body": body})
        self._track_seq(env)
        return env

    def _track_seq(self, env: Envelope) -> None:
        if env.seq == 0:  # not part of a sequenced stream
            return
        key = (env.src, env.type)
        last = self._last_seq.get(key)
        if last is not None and env.seq > last + 1:
            self.gaps[env.src] = self.gaps.get(env.src, 0) + env.seq - last - 1
        self._last_seq[key] = env.seq

    def close(self) -> None:
        """Close the socket; pending events are discarded."""
        self.socket.close(linger=0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ControlTimeout(TimeoutError):
    """No reply arrived in time (the supervisor is not running, not reachable, or stuck)."""

    def __init__(self, command: str, target: str | None, timeout: float, *, sent: bool) -> None:
        where = f"worker {target!r} via the supervisor" if target else "the supervisor"
        what = "no reply from" if sent else "could not reach"
        super().__init__(f"{what} {where} to {command!r} within {timeout:g} s")
        self.command = command
        self.target = target
        self.timeout = timeout
        self.sent = sent


class ControlFailed(Exception):
    """A control request was answered with an error (raised by :meth:`Reply.unwrap`)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Reply:
    """The answer to one control request: ``ok`` and ``result``, or ``error`` (code, reason)."""

    ok: bool
    result: Any
    error: ReplyError | None
    envelope: Envelope

    def unwrap(self) -> Any:
        """The result, or :class:`ControlFailed` carrying the error's code and reason."""
        if not self.ok:
            error = self.error or ReplyError(code="internal", reason="reply without an error")
            raise ControlFailed(error.code, error.reason)
        return self.result


class ControlClient:
    """Sends control requests to the supervisor's ROUTER and waits for each reply; one owner thread.

    Every request is answered (the supervisor replies ``timeout`` itself when a routed worker does
    not answer), so :meth:`request` waits for the reply to *its* request id and discards stale
    replies to earlier requests that timed out here. Requests are only queued on a live connection
    (``ZMQ_IMMEDIATE``): a request the supervisor could not get in time is not delivered later.
    Use one client per thread; the ROUTER serves any number at once.

    ``identity`` sets the DEALER's routing id (workers use ``b"worker:" + name`` so the supervisor
    can route to them); clients normally leave it to ZeroMQ. ``curve`` as for :class:`Subscriber`.
    """

    def __init__(
        self,
        ctx: zmq.Context[Any],
        address: str,
        src: str,
        *,
        identity: bytes | None = None,
        curve: CurveClientKeys | None = None,
    ) -> None:
        self.src = src
        self._drops = DropCounter(f"control:{address}")
        self.socket: zmq.Socket[Any] = ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.IMMEDIATE, 1)
        if identity is not None:
            self.socket.setsockopt(zmq.ROUTING_ID, identity)
        if curve is not None:
            curve.apply(self.socket)
        self.socket.connect(address)

    @property
    def dropped(self) -> int:
        """Invalid or stale frames discarded while waiting for replies."""
        return self._drops.total

    def request(
        self,
        command: str,
        args: Mapping[str, Any] | None = None,
        target: str | None = None,
        timeout: float = 5.0,
    ) -> Reply:
        """Send ``command`` (to worker ``target`` if given) and return its reply.

        Raises :class:`ControlTimeout` when it cannot be sent or is not answered within
        ``timeout`` seconds. An error *reply* is returned, not raised (see :meth:`Reply.unwrap`).
        """
        body = ControlRequest(command=command, args=dict(args or {}), target=target)
        env = make_envelope(topics.CONTROL_REQUEST, body.model_dump(), self.src, 0)
        frames = [b"", encode(env)]
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.socket.send_multipart(frames, zmq.NOBLOCK)
                break
            except zmq.Again:  # no live connection yet: wait for one until the deadline
                if not self.socket.poll(_timeout_ms(deadline), zmq.POLLOUT):
                    raise ControlTimeout(command, target, timeout, sent=False) from None
        while True:
            if not self.socket.poll(_timeout_ms(deadline), zmq.POLLIN):
                raise ControlTimeout(command, target, timeout, sent=True)
            reply = self._parse_reply(self.socket.recv_multipart())
            if reply is not None and reply.body["request_id"] == env.id:
                error = reply.body["error"]
                return Reply(
                    ok=reply.body["ok"],
                    result=reply.body["result"],
                    error=ReplyError.model_validate(error) if error is not None else None,
                    envelope=reply,
                )
            if reply is not None:
                self._drops.drop("stale", "reply to an earlier request that timed out here")

    def _parse_reply(self, frames: Sequence[bytes]) -> Envelope | None:
        try:
            _, env = decode_control(frames)
        except ProtocolError as exc:
            self._drops.drop(exc.kind, str(exc))
            return None
        if env.type != topics.CONTROL_REPLY:
            self._drops.drop("shape", f"expected a control.reply, got {env.type!r}")
            return None
        try:
            body = ControlReply.model_validate(env.body).model_dump()
        except ValidationError:
            self._drops.drop("body", "control.reply body does not fit its model")
            return None
        return env.model_copy(update={"body": body})

    def close(self) -> None:
        """Close the socket; an unanswered request is abandoned."""
        self.socket.close(linger=0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decode_control(frames: Sequence[bytes]) -> tuple[list[bytes], Envelope]:
    """Split a control message into its routing frames and its envelope.

    A ROUTER receives ``[identity…, b"", envelope]``; a DEALER receives ``[b"", envelope]``. The
    routing frames (everything before the empty delimiter) are returned so a router can send the
    reply back as ``[*route, b"", encode(reply)]``. Raises :class:`ProtocolError` for a message
    without the delimiter or with a bad envelope.
    """
    parts = [bytes(f) for f in frames]
    if len(parts) < 2 or parts[-2] != b"":
        raise ProtocolError(
            f"control message of {len(parts)} frames lacks the [b'', envelope] tail", kind="shape"
        )
    return parts[:-2], decode(parts[-1])


def reply_envelope(
    request_env: Envelope,
    ok: bool,
    result: Any = None,
    error: ReplyError | Mapping[str, Any] | None = None,
    src: str = "supervisor",
) -> Envelope:
    """The ``control.reply`` envelope answering ``request_env``.

    A reply is ``ok`` with an optional ``result`` or not ok with an ``error`` (code, reason); the
    model refuses any other combination, so no request can be answered with an unexplained failure.
    """
    if isinstance(error, ReplyError):
        error = error.model_dump()
    body = ControlReply.model_validate(
        {"request_id": request_env.id, "ok": ok, "result": result, "error": error}
    )
    return make_envelope(topics.CONTROL_REPLY, body.model_dump(), src, 0)


def error_reply(request_env: Envelope, code: str, reason: str, src: str = "supervisor") -> Envelope:
    """A failed ``control.reply`` to ``request_env``: ``code`` (see ErrorCode) and ``reason``."""
    return reply_envelope(request_env, False, error={"code": code, "reason": reason}, src=src)
