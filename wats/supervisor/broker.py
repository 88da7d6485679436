"""The supervisor's side of the bus: the event proxy and the control router.

The proxy (XSUB <- publishers, XPUB -> subscribers) runs in its own thread inside libzmq and never
touches Python objects. The router (ROUTER) is owned by the arbiter's loop thread: it answers
supervisor commands through a handler, forwards requests whose ``target`` names a worker to that
worker's DEALER (identity ``worker:<name>``) and forwards the worker's reply back, and answers
``timeout`` itself when a routed request outlives its deadline. Every request gets exactly one
reply; garbage is answered with ``bad_request`` when it came with a return address.
"""

from __future__ import annotations

import contextlib
import errno
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import zmq

from wats.protocol import topics
from wats.protocol.addresses import BusAddresses, write_endpoints
from wats.protocol.codec import ProtocolError, decode, encode
from wats.protocol.envelope import Envelope
from wats.protocol.messages import ControlRequest, ErrorCode

__all__ = ["WORKER_IDENTITY_PREFIX", "CommandError", "ControlRouter", "EventProxy", "bind_bus"]

WORKER_IDENTITY_PREFIX = b"worker:"
HELLO = "worker.hello"

log = structlog.get_logger("wats.supervisor.broker")


class CommandError(Exception):
    """A supervisor command failed with a reply error ``code`` and a ``reason`` for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class EventProxy:
    """XSUB/XPUB forwarding in a background thread, stopped through a steering socket."""

    def __init__(self, ctx: zmq.Context[Any], xsub: zmq.Socket[Any], xpub: zmq.Socket[Any]):
        self._ctx = ctx
        self._control_address = f"inproc://proxy-control-{id(self)}"
        self._control = ctx.socket(zmq.PAIR)
        self._control.bind(self._control_address)
        peer = ctx.socket(zmq.PAIR)
        peer.connect(self._control_address)
        self._thread = threading.Thread(
            target=self._run, args=(xsub, xpub, peer), name="event-proxy", daemon=True
        )
        self._thread.start()

    @staticmethod
    def _run(xsub: zmq.Socket[Any], xpub: zmq.Socket[Any], control: zmq.Socket[Any]) -> None:
        try:
            zmq.proxy_steerable(xsub, xpub, None, control)
        except zmq.ContextTerminated:  # pragma: no cover - only if the context dies first
            pass
        finally:
            for sock in (xsub, xpub, control):
                sock.close(linger=0)

    def close(self, timeout: float = 2.0) -> None:
        """Stop the proxy and wait for its thread (which closes the proxy's sockets)."""
        with contextlib.suppress(zmq.ZMQError):
            self._control.send(b"TERMINATE")
        self._thread.join(timeout)
        self._control.close(linger=0)


@dataclass
class BoundBus:
    """The supervisor's bound sockets and the endpoints clients read from endpoints.json."""

    addresses: BusAddresses
    proxy: EventProxy
    router: zmq.Socket[Any]


def bind_bus(ctx: zmq.Context[Any], runtime_dir: Path) -> BoundBus:
    """Bind XSUB/XPUB/ROUTER in ``runtime_dir``, start the proxy, record the actual endpoints."""
    wanted = BusAddresses.for_runtime_dir(runtime_dir)
    for endpoint in (wanted.events_in, wanted.events_out, wanted.control):
        _remove_stale_ipc(endpoint)
    xsub = ctx.socket(zmq.XSUB)
    xpub = ctx.socket(zmq.XPUB)
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.ROUTER_HANDOVER, 1)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    router.setsockopt(zmq.LINGER, 0)
    for sock in (xsub, xpub):
        sock.setsockopt(zmq.LINGER, 0)
    try:
        xsub.bind(wanted.events_in)
        xpub.bind(wanted.events_out)
        router.bind(wanted.control)
    except zmq.ZMQError:
        for sock in (xsub, xpub, router):
            sock.close(linger=0)
        raise
    actual = BusAddresses(
        events_in=_last_endpoint(xsub),
        events_out=_last_endpoint(xpub),
        control=_last_endpoint(router),
    )
    proxy = EventProxy(ctx, xsub, xpub)
    write_endpoints(runtime_dir, actual)
    return BoundBus(actual, proxy, router)


def _last_endpoint(sock: zmq.Socket[Any]) -> str:
    value = sock.getsockopt(zmq.LAST_ENDPOINT)
    return value.decode() if isinstance(value, bytes) else str(value)


def _remove_stale_ipc(endpoint: str) -> None:
    """A SIGKILLed supervisor leaves socket files behind; we hold the instance lock: ours."""
    if endpoint.startswith("ipc://"):
        with contextlib.suppress(OSError):
            Path(endpoint[len("ipc://") :]).unlink()


Handler = Callable[[str, dict[str, Any], bytes], Any]
"""A supervisor command handler: (command, args, sender identity) -> result, or CommandError."""
TargetCheck = Callable[[str], None]
"""Raises CommandError(unknown_worker | worker_unavailable) unless the worker can take a request."""


@dataclass
class _Pending:
    client: bytes
    delimited: bool
    target: str
    deadline: float


class ControlRouter:
    """Answers and routes control requests on the ROUTER; used only from the arbiter's thread."""

    def __init__(
        self,
        socket: zmq.Socket[Any],
        handler: Handler,
        check_target: TargetCheck,
        request_timeout: float,
        src: str = "supervisor",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.socket = socket
        self._handler = handler
        self._check_target = check_target
        self._timeout = request_timeout
        self._src = src
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self.dropped = 0

    # -- incoming -------------------------------------------------------------------------

    def handle_ready(self, budget: int = 200) -> None:
        """Serve up to ``budget`` queued messages without blocking."""
        for _ in range(budget):
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.handle(frames)

    def handle(self, frames: list[bytes]) -> None:
        """Handle one ROUTER message ``[identity, b"", payload]`` (or without the delimiter)."""
        if len(frames) == 3 and frames[1] == b"":
            identity, payload, delimited = frames[0], frames[2], True
        elif len(frames) == 2:
            identity, payload, delimited = frames[0], frames[1], False
        else:
            self.dropped += 1
            log.warning("control frame dropped", reason="bad framing", frames=len(frames))
            return
        try:
            env = decode(payload)
        except ProtocolError as exc:
            self.dropped += 1
            log.warning("control frame dropped", reason=str(exc), kind=exc.kind)
            self._error(identity, delimited, "-", ErrorCode.BAD_REQUEST, str(exc))
            return
        if env.type == topics.CONTROL_REPLY:
            self._forward_reply(env, payload)
        elif env.type == topics.CONTROL_REQUEST:
            self._serve_request(identity, delimited, env, payload)
        else:
            self.dropped += 1
            self._error(
                identity,
                delimited,
                env.id,
                ErrorCode.BAD_REQUEST,
                f"expected a {topics.CONTROL_REQUEST!r} message, got {env.type!r}",
            )

    def _serve_request(self, identity: bytes, delimited: bool, env: Envelope, raw: bytes) -> None:
        try:
            request = ControlRequest.model_validate(env.body)
        except ValueError as exc:
            fields = _error_fields(exc)
            self._error(
                identity,
                delimited,
                env.id,
                ErrorCode.BAD_REQUEST,
                f"control.request body has bad fields: {fields}",
            )
            return
        if request.target is not None:
            self._route(identity, delimited, env, request.target, raw)
            return
        try:
            result = self._handler(request.command, dict(request.args), identity)
        except CommandError as exc:
            self._error(identity, delimited, env.id, exc.code, exc.reason)
        except Exception as exc:
            log.exception("control command failed", command=request.command)
            self._error(
                identity,
                delimited,
                env.id,
                ErrorCode.INTERNAL,
                f"{request.command} failed: {type(exc).__name__}",
            )
        else:
            self._send_reply(identity, delimited, env.id, True, result)

    def _route(
        self, identity: bytes, delimited: bool, env: Envelope, target: str, raw: bytes
    ) -> None:
        try:
            self._check_target(target)
        except CommandError as exc:
            self._error(identity, delimited, env.id, exc.code, exc.reason)
            return
        try:
            self.socket.send_multipart(
                [WORKER_IDENTITY_PREFIX + target.encode(), b"", raw], zmq.NOBLOCK
            )
        except zmq.ZMQError as exc:
            if exc.errno not in (errno.EHOSTUNREACH, errno.EAGAIN):
                raise
            self._error(
                identity,
                delimited,
                env.id,
                ErrorCode.WORKER_UNAVAILABLE,
                f"worker {target!r} is not connected to the bus",
            )
            return
        self._pending[env.id] = _Pending(identity, delimited, target, self._clock() + self._timeout)

    def _forward_reply(self, env: Envelope, raw: bytes) -> None:
        request_id = env.body.get("request_id")
        pending = self._pending.pop(request_id, None) if isinstance(request_id, str) else None
        if pending is None:
            log.debug("late or unknown reply dropped", request_id=request_id)
            return
        frames = [pending.client, b"", raw] if pending.delimited else [pending.client, raw]
        self._send(frames)

    # -- deadlines and failures -----------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When the oldest routed request times out (monotonic), or None."""
        return min((p.deadline for p in self._pending.values()), default=None)

    def expire(self) -> None:
        """Answer ``timeout`` for every routed request past its deadline."""
        now = self._clock()
        for request_id, pending in list(self._pending.items()):
            if pending.deadline <= now:
                del self._pending[request_id]
                self._error(
                    pending.client,
                    pending.delimited,
                    request_id,
                    ErrorCode.TIMEOUT,
                    f"worker {pending.target!r} did not answer within {self._timeout:g} s",
                )

    def fail_target(self, target: str, reason: str) -> None:
        """Answer ``worker_unavailable`` for every request routed to a worker that just exited."""
        for request_id, pending in list(self._pending.items()):
            if pending.target == target:
                del self._pending[request_id]
                self._error(
                    pending.client,
                    pending.delimited,
                    request_id,
                    ErrorCode.WORKER_UNAVAILABLE,
                    reason,
                )

    # -- outgoing -------------------------------------------------------------------------

    def _send_reply(
        self,
        identity: bytes,
        delimited: bool,
        request_id: str,
        ok: bool,
        result: Any = None,
        code: str | None = None,
        reason: str = "",
    ) -> None:
        body: dict[str, Any] = {"request_id": request_id, "ok": ok, "result": result}
        body["error"] = None if ok else {"code": str(code), "reason": reason}
        env = Envelope(type=topics.CONTROL_REPLY, src=self._src, seq=0, body=body)
        try:
            payload = encode(env)
        except ProtocolError as exc:
            body = {
                "request_id": request_id,
                "ok": False,
                "result": None,
                "error": {"code": str(ErrorCode.INTERNAL), "reason": str(exc)},
            }
            payload = encode(Envelope(type=topics.CONTROL_REPLY, src=self._src, body=body))
        self._send([identity, b"", payload] if delimited else [identity, payload])

    def _error(
        self, identity: bytes, delimited: bool, request_id: str, code: str, reason: str
    ) -> None:
        self._send_reply(identity, delimited, request_id, False, None, code, reason)

    def _send(self, frames: list[bytes]) -> None:
        try:
            self.socket.send_multipart(frames, zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # the client went away, or is not reading: drop the reply
            log.debug("reply dropped", error=str(exc))


def _error_fields(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return ", ".join(sorted({".".join(str(p) for p in e["loc"]) or "<root>" for e in errors()}))
    return type(exc).__name__
