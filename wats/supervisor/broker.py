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
from typing import TYPE_CHECKING, Any

import structlog
import zmq

from wats.protocol import topics
from wats.protocol.addresses import BusAddresses, write_endpoints
from wats.protocol.bus import DropCounter
from wats.protocol.codec import MAX_FRAME_BYTES, ProtocolError, decode, encode
from wats.protocol.envelope import Envelope
from wats.protocol.messages import ControlRequest, ErrorCode
from wats.protocol.security import (
    BusSecurityError,
    CurveServerKeys,
    KeyPaths,
    ensure_private_dir,
    is_loopback_host,
    load_server_keys,
    make_private_socket,
    start_authenticator,
)

__all__ = [
    "WORKER_IDENTITY_PREFIX",
    "BoundBus",
    "CommandError",
    "ControlRouter",
    "EventProxy",
    "RemoteListener",
    "bind_bus",
]

WORKER_IDENTITY_PREFIX = b"worker:"
HELLO = "worker.hello"

if TYPE_CHECKING:
    from wats.config.models import BusSection

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


@dataclass(frozen=True)
class RemoteListener:
    """Network listeners for monitors on other machines (``[bus] listen_host``).

    Only the event output (XPUB) and the control ROUTER are offered: a remote peer may watch and
    command, never inject events. ``keys`` is None only for a loopback host; then the listeners
    speak plain ZeroMQ like the local ones. ``port`` 0 binds an ephemeral port.
    """

    host: str
    events_port: int
    control_port: int
    keys: CurveServerKeys | None
    authorized_dir: Path

    @classmethod
    def from_config(cls, bus: BusSection, data_dir: Path) -> RemoteListener | None:
        """The listener ``bus`` asks for, keys loaded; None without ``listen_host``.

        Raises :class:`BusSecurityError` naming the setting to fix when a non-loopback host has
        no server key, or the key file is missing, public-only or readable by others.
        """
        if not bus.listen_host:
            return None
        authorized = KeyPaths.resolve(data_dir, bus.key_dir, bus.authorized_keys).authorized_dir
        keys = load_server_keys(Path(bus.server_key)) if bus.server_key else None
        if keys is None and not is_loopback_host(bus.listen_host):
            raise BusSecurityError(
                f"[bus] listen_host {bus.listen_host!r} is not a loopback address: set "
                "[bus] server_key to the hub's secret key file (make one with "
                "`wats-supervisor keys generate --name server`)"
            )
        return cls(bus.listen_host, bus.events_port, bus.control_port, keys, authorized)

    def endpoint(self, port: int) -> str:
        """``tcp://host:port`` (IPv6 literals bracketed, port 0 as ZeroMQ's ephemeral ``*``)."""
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"tcp://{host}:{port or '*'}"


@dataclass
class BoundBus:
    """The supervisor's bound sockets and the endpoints clients read from endpoints.json.

    ``remote`` holds the network endpoints actually bound (``events_out``, ``control``) when a
    :class:`RemoteListener` was asked for; ``authenticator`` the ZAP thread guarding them.
    """

    addresses: BusAddresses
    proxy: EventProxy
    router: zmq.Socket[Any]
    remote: dict[str, str] | None = None
    authenticator: Any = None

    def close(self) -> None:
        """Close the router, stop the proxy and the authenticator (before the context ends)."""
        self.router.close(linger=0)
        self.proxy.close()
        if self.authenticator is not None:
            self.authenticator.stop()
            self.authenticator = None
        # A clean stop leaves no socket files behind (we held the instance lock: they are ours).
        for endpoint in (
            self.addresses.events_in,
            self.addresses.events_out,
            self.addresses.control,
        ):
            _remove_stale_ipc(endpoint)


HARD_MAX_MESSAGE_BYTES = 4 * MAX_FRAME_BYTES
"""libzmq drops a peer that sends a larger message before it is buffered whole (ZMQ_MAXMSGSIZE).
Frames between MAX_FRAME_BYTES and this are received, logged and dropped by the codec; beyond it
they would only cost memory, so the connection goes instead."""


def bind_bus(
    ctx: zmq.Context[Any], runtime_dir: Path, remote: RemoteListener | None = None
) -> BoundBus:
    """Bind XSUB/XPUB/ROUTER in ``runtime_dir``, start the proxy, record the actual endpoints.

    The runtime dir is made private (0700) and ``ipc://`` socket files owner-only (0600) before
    anyone is told about them. With ``remote``, the XPUB and the ROUTER also listen on the
    network; socket options apply to later binds only, so CURVE covers exactly those endpoints
    while local peers keep connecting without keys.
    """
    ensure_private_dir(runtime_dir)
    wanted = BusAddresses.for_runtime_dir(runtime_dir)
    for endpoint in (wanted.events_in, wanted.events_out, wanted.control):
        _remove_stale_ipc(endpoint)
    xsub = ctx.socket(zmq.XSUB)
    xpub = ctx.socket(zmq.XPUB)
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.ROUTER_HANDOVER, 1)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    for sock in (xsub, xpub, router):
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, HARD_MAX_MESSAGE_BYTES)
    authenticator = None
    try:
        xsub.bind(wanted.events_in)
        xpub.bind(wanted.events_out)
        router.bind(wanted.control)
        actual = BusAddresses(
            events_in=_last_endpoint(xsub),
            events_out=_last_endpoint(xpub),
            control=_last_endpoint(router),
        )
        for endpoint in (actual.events_in, actual.events_out, actual.control):
            make_private_socket(endpoint)
        bound_remote = None
        if remote is not None:
            if remote.keys is not None:
                authenticator = start_authenticator(ctx, remote.authorized_dir)
            bound_remote = {
                "events_out": _bind_remote(xpub, remote, remote.events_port, "events_port"),
                "control": _bind_remote(router, remote, remote.control_port, "control_port"),
            }
    except BaseException:
        for sock in (xsub, xpub, router):
            sock.close(linger=0)
        if authenticator is not None:
            authenticator.stop()
        raise
    proxy = EventProxy(ctx, xsub, xpub)
    extra = {f"remote_{k}": v for k, v in (bound_remote or {}).items()}
    write_endpoints(runtime_dir, actual, extra=extra)
    if bound_remote is not None:
        log.info(
            "bus listening for remote clients",
            curve=remote is not None and remote.keys is not None,
            **bound_remote,
        )
    return BoundBus(actual, proxy, router, bound_remote, authenticator)


def _bind_remote(sock: zmq.Socket[Any], remote: RemoteListener, port: int, setting: str) -> str:
    if remote.keys is not None:
        remote.keys.apply(sock)
    if ":" in remote.host:
        sock.setsockopt(zmq.IPV6, 1)
    endpoint = remote.endpoint(port)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        raise BusSecurityError(
            f"cannot listen on {endpoint} ([bus] listen_host / {setting}): {exc.strerror}; "
            "choose a free port or an address of this machine"
        ) from None
    return _last_endpoint(sock)


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


def _is_remote(frame: zmq.Frame) -> bool:
    """Whether a received frame came from a CURVE-authenticated (network) peer: ZAP gave its
    connection a User-Id; local ipc/loopback peers never pass through ZAP."""
    try:
        return bool(frame.get("User-Id"))
    except zmq.ZMQError:
        return False


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
        self._drops = DropCounter("router")

    @property
    def dropped(self) -> int:
        """Control frames dropped as invalid since start (each logged, rate-limited per cause)."""
        return self._drops.total

    @property
    def dropped_by_kind(self) -> dict[str, int]:
        """Dropped control frames by cause: oversized, malformed, shape, version."""
        return dict(self._drops.by_kind)

    # -- incoming -------------------------------------------------------------------------

    def handle_ready(self, budget: int = 200) -> None:
        """Serve up to ``budget`` queued messages without blocking."""
        for _ in range(budget):
            try:
                parts = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.handle([part.bytes for part in parts], remote=_is_remote(parts[-1]))

    def handle(self, frames: list[bytes], *, remote: bool = False) -> None:
        """Handle one ROUTER message ``[identity, b"", payload]`` (or without the delimiter).

        ``remote``: it came over the CurveZMQ network listener. A remote peer may watch and
        command, never act as a worker: a ``worker:`` routing id or a ``control.reply`` from it
        is refused, so an authorized monitor cannot answer in a worker's name.
        """
        if len(frames) == 3 and frames[1] == b"":
            identity, payload, delimited = frames[0], frames[2], True
        elif len(frames) == 2:
            identity, payload, delimited = frames[0], frames[1], False
        else:
            self._drops.drop("shape", f"control message of {len(frames)} frames, expected 2 or 3")
            return
        try:
            env = decode(payload)
        except ProtocolError as exc:
            self._drops.drop(exc.kind, str(exc))
            self._error(identity, delimited, "-", ErrorCode.BAD_REQUEST, str(exc))
            return
        if remote and (
            identity.startswith(WORKER_IDENTITY_PREFIX) or env.type == topics.CONTROL_REPLY
        ):
            self._drops.drop("forbidden", "a remote peer tried to act as a worker")
            if env.type != topics.CONTROL_REPLY:
                self._error(
                    identity,
                    delimited,
                    env.id,
                    ErrorCode.FORBIDDEN,
                    "remote peers may not use a worker's identity",
                )
            return
        if env.type == topics.CONTROL_REPLY:
            self._forward_reply(env, payload)
        elif env.type == topics.CONTROL_REQUEST:
            self._serve_request(identity, delimited, env, payload)
        else:
            self._drops.drop("shape", f"{env.type!r} message on the control socket")
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
