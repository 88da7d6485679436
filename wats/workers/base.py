"""The worker base: everything a worker process needs except its job.

Why one base: every worker must heartbeat, answer routed control requests, stop cleanly on
SIGTERM and exit when its supervisor is gone. Getting those right once, here, lets a worker
module read as its job only (health checks, reference-data sync, ...).

The shape is a single-threaded event loop owned by :meth:`Worker.run`: one ``zmq.Poller`` waits on
the event subscription, the control DEALER and a wake-up socket (signals and finished background
jobs), with a timeout set by the next due timer. Heartbeats are timers of that same loop, so a
worker whose loop is stuck stops heartbeating and the supervisor's watchdog notices.

Blocking work (HTTP) goes to :meth:`Worker.run_in_thread`; its result comes back to the loop
thread through ``on_done``. Nothing runs unowned: an exception in a timer, or in a job without
``on_done``, ends the worker loudly (exit 1) so the supervisor restarts it. A bad bus message or
a failing control handler only costs that message (logged; the requester gets an error reply).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import structlog
import zmq
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from wats.config.load import load_runtime_config
from wats.config.models import ClientConfig
from wats.platform import set_parent_death_signal
from wats.protocol import topics
from wats.protocol.addresses import BusAddresses, read_endpoints
from wats.protocol.bus import Publisher, Subscriber, reply_envelope
from wats.protocol.codec import ProtocolError, decode, encode, make_envelope
from wats.protocol.envelope import Envelope
from wats.protocol.messages import WorkerFailure, validate_body
from wats.workers.threads import JobThreads

__all__ = [
    "ControlError",
    "Job",
    "Later",
    "StartError",
    "Timer",
    "Worker",
    "WorkerEnvironment",
    "handles",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

ENV_RUNTIME_DIR = "WATS_RUNTIME_DIR"
ENV_RUNTIME_CONFIG = "WATS_RUNTIME_CONFIG"
ENV_WORKER_ARGS = "WATS_WORKER_ARGS"
ENV_INSTANCE = "WATS_INSTANCE"
ENV_SUPERVISOR_PID = "WATS_SUPERVISOR_PID"

HELLO_COMMAND = "worker.hello"
_COMMAND_ATTR = "__wats_command__"
_MAX_BATCH = 256  # messages drained per socket per loop turn, so timers are never starved
_SOCKET_LINGER_MS = 500  # let the last events (e.g. a final status) leave on exit
_BUS_SETTLE_SECONDS = 2.0


class ControlError(Exception):
    """Raise from a control handler to answer with an error ``code`` and a human ``reason``.

    Codes are the protocol's (``bad_request``, ``unknown_command``, ``internal``, ...).
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class StartError(Exception):
    """Raise from ``setup`` when the worker cannot start for a reason a restart will not fix
    (its port is taken, ...): the process exits with one log line, no traceback, and the
    supervisor shows ``message`` in ``status`` and stops retrying after a few such starts.

    ``message`` is for people and names what to change ("port 8080 on 127.0.0.1 in use ...").
    """

    def __init__(self, reason: WorkerFailure, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def handles(command: str) -> Callable[[F], F]:
    """Mark a worker method as the handler of the routed control request ``command``.

    The method receives the request's ``args`` dict and returns the reply's result (any
    msgpack-able value), raises :class:`ControlError`, or returns :meth:`Worker.later` to reply
    when a background job finishes.
    """

    def mark(method: F) -> F:
        setattr(method, _COMMAND_ATTR, command)
        return method

    return mark


@dataclass
class WorkerEnvironment:
    """What the supervisor hands a worker process through its environment.

    ``runtime_dir`` holds ``endpoints.json``; ``config_path`` the JSON dump of the effective
    config; ``args`` the worker spec's arguments; ``supervisor_pid`` our expected parent.
    """

    name: str
    runtime_dir: Path | None = None
    config_path: Path | None = None
    args: dict[str, Any] = field(default_factory=dict)
    instance: str = "default"
    supervisor_pid: int | None = None

    @classmethod
    def from_environ(cls, name: str, environ: dict[str, str] | None = None) -> WorkerEnvironment:
        """Read the ``WATS_*`` variables; a bad ``WATS_WORKER_ARGS`` is a ``ValueError``."""
        env = dict(os.environ if environ is None else environ)
        raw_args = env.get(ENV_WORKER_ARGS, "").strip()
        args = json.loads(raw_args) if raw_args else {}
        if not isinstance(args, dict):
            raise ValueError(f"{ENV_WORKER_ARGS} must be a JSON object, got {type(args).__name__}")
        pid = env.get(ENV_SUPERVISOR_PID, "").strip()
        return cls(
            name=name,
            runtime_dir=Path(env[ENV_RUNTIME_DIR]) if env.get(ENV_RUNTIME_DIR) else None,
            config_path=Path(env[ENV_RUNTIME_CONFIG]) if env.get(ENV_RUNTIME_CONFIG) else None,
            args=args,
            instance=env.get(ENV_INSTANCE, "") or "default",
            supervisor_pid=int(pid) if pid else None,
        )


class Timer:
    """A repeating (``interval``) or one-shot (``interval is None``) callback of the loop."""

    def __init__(self, due: float, interval: float | None, fn: Callable[[], Any]) -> None:
        self.due = due
        self.interval = interval
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run again."""
        self.cancelled = True


class Job:
    """A blocking call running in a background thread; ``done`` once its result is delivered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


@dataclass
class Later:
    """A control handler's promise: reply once ``fn()`` has run in a background thread.

    Without ``then`` the reply is ``fn()``'s result (or its error). With ``then``,
    ``then(result, error)`` runs in the loop (it may update the worker's state and publish) and
    its return value is the reply; it may raise :class:`ControlError`.
    """

    fn: Callable[[], Any]
    then: Callable[[Any, BaseException | None], Any] | None = None


@dataclass
class _Completion:
    job: Job
    on_done: Callable[[Any, BaseException | None], Any] | None


class Worker:
    """Base class of every worker process. Subclasses implement ``setup`` (and maybe ``teardown``).

    Attributes: ``name``, ``config`` (:class:`ClientConfig`), ``args`` (the spec's args),
    ``log`` (structlog bound to the worker), ``progress`` (heartbeat counter; :meth:`tick`),
    ``ready`` (reported in heartbeats), ``handlers`` (command → callable(args)).
    """

    def __init__(
        self,
        name: str,
        config: ClientConfig | None = None,
        args: dict[str, Any] | None = None,
        *,
        addresses: BusAddresses | None = None,
        supervisor_pid: int | None = None,
        instance: str | None = None,
    ) -> None:
        self.name = name
        self.config = config if config is not None else ClientConfig()
        self.args: dict[str, Any] = dict(args or {})
        self.instance = instance or self.config.instance.name
        self.addresses = addresses
        self.supervisor_pid = supervisor_pid
        # A lazy logger: the worker is built before its config's [logging] level is applied
        # (wats.workers.__main__), and .bind() would freeze the level in force at this moment.
        self.log = structlog.get_logger("wats.worker", worker=name)
        self.progress = 0
        self.ready = False
        self.handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "worker.info": self._info,
        }
        for attr in dir(type(self)):
            method = getattr(self, attr, None)
            command = getattr(method, _COMMAND_ATTR, None)
            if command and callable(method):
                self.handlers[command] = method
        self.stop_reason: str | None = None
        self._stopping = False
        self._timers: list[Timer] = []
        self._subscriptions: list[tuple[str, Callable[[Envelope, Any], Any]]] = []
        self._jobs: set[Job] = set()
        self._threads = JobThreads(name)
        self._completions: queue.SimpleQueue[_Completion] = queue.SimpleQueue()
        self._loop_thread: int | None = None
        self._ctx: zmq.Context[Any] | None = None
        self._publisher: Publisher | None = None
        self._subscriber: Subscriber | None = None
        self._control: zmq.Socket[Any] | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._last_supervisor_beat: float | None = None
        self._bus_settled = False
        self._set_up = False
        self.runtime_dir: Path | None = None  # set by from_environment (start failure file)
        self.started = time.time()

    # ---- construction from the process environment ---------------------------------------

    @classmethod
    def from_environment(cls, name: str, environ: dict[str, str] | None = None) -> Worker:
        """Build the worker the supervisor asked for (launch contract: docs/workers.md)."""
        env = WorkerEnvironment.from_environ(name, environ)
        config = load_runtime_config(env.config_path) if env.config_path else ClientConfig()
        addresses = read_endpoints(env.runtime_dir) if env.runtime_dir else None
        worker = cls(
            name,
            config,
            env.args,
            addresses=addresses,
            supervisor_pid=env.supervisor_pid,
            instance=env.instance,
        )
        worker.runtime_dir = env.runtime_dir
        return worker

    @property
    def set_up(self) -> bool:
        """True once ``setup`` returned: a failure after that is not a start failure."""
        return self._set_up

    # ---- hooks for subclasses -------------------------------------------------------------

    def setup(self) -> None:
        """Register timers, subscriptions and handlers; runs once the bus is connected."""

    def teardown(self) -> None:
        """Release resources; runs on the way out (after a stop or a failure)."""

    def heartbeat_detail(self) -> dict[str, Any]:
        """Extra, small, msgpack-able facts carried in every heartbeat's ``detail``."""
        return {}

    # ---- the API worker modules use -------------------------------------------------------

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats (``[supervisor] heartbeat_interval_seconds``)."""
        return float(self.config.supervisor.heartbeat_interval_seconds)

    @property
    def stopping(self) -> bool:
        """True once a stop was requested (signal, orphaned, :meth:`stop`)."""
        return self._stopping

    def tick(self, amount: int = 1) -> int:
        """Advance the progress counter the heartbeat carries (proof that work moves)."""
        self.progress += amount
        return self.progress

    def publish(self, type_: str, body: dict[str, Any]) -> Envelope | None:
        """Publish an event on the bus (loop thread only: zmq sockets are not thread-safe)."""
        self._require_loop_thread("publish")
        if self._publisher is None:
            self.log.debug("no bus; event not published", type=type_)
            return None
        return self._publisher.publish(type_, body)

    def every(self, seconds: float, fn: Callable[[], Any], *, first: float | None = None) -> Timer:
        """Call ``fn`` every ``seconds`` from the loop; the first call after ``first`` (default:
        one interval). An exception from ``fn`` ends the worker (exit 1)."""
        if seconds <= 0:
            raise ValueError(f"timer interval must be > 0, got {seconds}")
        delay = seconds if first is None else max(first, 0.0)
        timer = Timer(time.monotonic() + delay, seconds, fn)
        self._timers.append(timer)
        return timer

    def after(self, seconds: float, fn: Callable[[], Any]) -> Timer:
        """Call ``fn`` once, ``seconds`` from now, from the loop."""
        timer = Timer(time.monotonic() + max(seconds, 0.0), None, fn)
        self._timers.append(timer)
        return timer

    def subscribe(self, prefix: str, handler: Callable[[Envelope, Any], Any]) -> None:
        """Call ``handler(envelope, body)`` for each event whose type starts with ``prefix``.

        ``body`` is the validated message model (a dict for types without one). Events whose
        body fails validation are logged and dropped; a handler's exception is logged too —
        events are hints, one bad event must not take the worker down.
        """
        self._subscriptions.append((prefix, handler))
        if self._subscriber is not None:
            self._subscriber.socket.setsockopt(zmq.SUBSCRIBE, prefix.encode())

    def run_in_thread(
        self,
        fn: Callable[[], T],
        on_done: Callable[[T | None, BaseException | None], Any] | None = None,
        *,
        name: str = "job",
    ) -> Job:
        """Run blocking ``fn`` in a thread (at once: an idle one if there is one, else a new
        one; see ``wats.workers.threads``); ``on_done(result, error)`` then runs in the loop.

        Without ``on_done`` an exception from ``fn`` ends the worker (nothing fails silently).
        On stop, the worker waits (bounded) for running jobs and delivers their results first.
        """
        job = Job(name)
        self._jobs.add(job)

        def target() -> None:
            try:
                job.result = fn()
            except BaseException as exc:  # delivered to the loop, which decides
                job.error = exc
            self._completions.put(_Completion(job, on_done))
            self._wake()

        self._threads.submit(name, target)
        return job

    def later(
        self,
        fn: Callable[[], Any],
        then: Callable[[Any, BaseException | None], Any] | None = None,
    ) -> Later:
        """Return this from a control handler to reply once ``fn()`` is done (:class:`Later`)."""
        return Later(fn, then)

    def stop(self, reason: str = "requested") -> None:
        """Ask the loop to finish its current step and exit cleanly."""
        if not self._stopping:
            self.stop_reason = reason
            self._stopping = True
            self.log.info("worker stopping", reason=reason)
        self._wake()

    # ---- running --------------------------------------------------------------------------

    def run(self) -> int:
        """Connect, set up, loop until stopped; returns the process exit code (0 = clean stop).

        Exceptions from ``setup`` or timers propagate (``__main__`` logs them and exits 1).
        """
        self._loop_thread = threading.get_ident()
        self._install_signal_handlers()
        if self._parent_gone_at_start():
            return 0
        self._open_bus()
        set_up = False
        try:
            self._settle_bus()
            self.setup()
            set_up = self._set_up = True
            self.log.info("worker started", pid=os.getpid())
            self._heartbeat()
            self.every(self.heartbeat_interval, self._heartbeat)
            self.every(self._parent_check_interval(), self._check_parent)
            self._loop()
            self._drain_jobs()
        finally:
            try:
                if set_up:
                    self.teardown()
            finally:
                self._close_bus()
        self.log.info("worker stopped", reason=self.stop_reason)
        return 0

    def _loop(self) -> None:
        assert self._wake_r is not None
        poller = zmq.Poller()
        if self._subscriber is not None:
            poller.register(self._subscriber.socket, zmq.POLLIN)
        if self._control is not None:
            poller.register(self._control, zmq.POLLIN)
        poller.register(self._wake_r.fileno(), zmq.POLLIN)
        while not self._stopping:
            events = dict(poller.poll(self._poll_timeout_ms()))
            if self._wake_r.fileno() in events:
                self._drain_wake()
            self._deliver_completions()
            if self._subscriber is not None and self._subscriber.socket in events:
                self._drain_events()
            if self._control is not None and self._control in events:
                self._drain_control()
            self._run_due_timers()

    def _poll_timeout_ms(self) -> int:
        live = [t.due for t in self._timers if not t.cancelled]
        if not live:
            return 1000
        wait = min(live) - time.monotonic()
        return max(0, min(1000, int(wait * 1000) + 1))

    def _run_due_timers(self) -> None:
        now = time.monotonic()
        self._timers = [t for t in self._timers if not t.cancelled]
        for timer in sorted(self._timers, key=lambda t: t.due):
            if self._stopping or timer.cancelled or timer.due > now:
                continue
            if timer.interval is None:
                timer.cancelled = True
            else:
                # Catch up without bursting: a late timer runs once and is rescheduled.
                timer.due = max(timer.due + timer.interval, now)
            timer.fn()

    # ---- heartbeat and parent death -------------------------------------------------------

    def _heartbeat(self) -> None:
        self.publish(
            topics.WORKER_HEARTBEAT,
            {
                "worker": self.name,
                "pid": os.getpid(),
                "progress": self.progress,
                "ready": self.ready,
                # Before setup the subclass's state does not exist yet: no detail then.
                "detail": to_jsonable_python(self.heartbeat_detail()) if self._set_up else {},
            },
        )

    def _orphan_timeout(self) -> float:
        return float(self.config.supervisor.orphan_timeout_seconds)

    def _parent_check_interval(self) -> float:
        return max(0.02, min(0.25, self._orphan_timeout() / 4))

    def _parent_gone_at_start(self) -> bool:
        # PDEATHSIG only covers a parent dying after this call; the getppid check covers the
        # window before it (the parent died while we were starting: we were reparented).
        set_parent_death_signal(signal.SIGTERM)
        if self.supervisor_pid is not None and os.getppid() != self.supervisor_pid:
            self.stop_reason = "orphaned"
            self.log.warning("supervisor gone before start", expected=self.supervisor_pid)
            return True
        return False

    def _check_parent(self) -> None:
        if self.supervisor_pid is not None and os.getppid() != self.supervisor_pid:
            self.log.warning("supervisor process gone; exiting", ppid=os.getppid())
            self.stop("orphaned")
            return
        last = self._last_supervisor_beat
        if last is not None and time.monotonic() - last > self._orphan_timeout():
            self.log.warning(
                "no supervisor heartbeat; exiting", silent_seconds=round(time.monotonic() - last, 3)
            )
            self.stop("orphaned")

    def _on_supervisor_heartbeat(self, env: Envelope, body: Any) -> None:
        self._last_supervisor_beat = time.monotonic()

    def _on_own_heartbeat(self, env: Envelope, body: Any) -> None:
        if env.src == self.name:
            self._bus_settled = True

    # ---- bus plumbing ---------------------------------------------------------------------

    def _open_bus(self) -> None:
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        with contextlib.suppress(ValueError):  # not the main thread (tests): no wakeup fd
            signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        if self.addresses is None:
            self.log.warning("no runtime dir: running without a bus")
            return
        self._ctx = zmq.Context()
        self._publisher = Publisher(self._ctx, self.addresses.events_in, self.name)
        self._publisher.socket.setsockopt(zmq.LINGER, _SOCKET_LINGER_MS)
        prefixes = [topics.SUPERVISOR_HEARTBEAT] + [p for p, _ in self._subscriptions]
        self._subscriber = Subscriber(self._ctx, self.addresses.events_out, prefixes)
        self._subscriber.socket.setsockopt(zmq.LINGER, 0)
        self._subscriptions.insert(0, (topics.SUPERVISOR_HEARTBEAT, self._on_supervisor_heartbeat))
        control = self._ctx.socket(zmq.DEALER)
        control.setsockopt(zmq.IDENTITY, b"worker:" + self.name.encode())
        control.setsockopt(zmq.LINGER, _SOCKET_LINGER_MS)
        control.connect(self.addresses.control)
        self._control = control
        self._send_control(
            make_envelope(
                topics.CONTROL_REQUEST,
                {"command": HELLO_COMMAND, "args": {"pid": os.getpid()}},
                self.name,
                0,  # control messages are outside any published stream
            )
        )

    def _settle_bus(self) -> None:
        """Wait (bounded) until our own heartbeat comes back through the proxy.

        A PUB drops messages until subscriptions reach it; once our own event makes the round
        trip, subscriptions made before it have reached us too, so the first real events
        (e.g. the health worker's first status) are not lost to the slow-joiner effect.
        """
        if self._subscriber is None:
            return
        topic = topics.WORKER_HEARTBEAT.encode()
        sub = self._subscriber.socket
        sub.setsockopt(zmq.SUBSCRIBE, topic)
        self._subscriptions.append((topics.WORKER_HEARTBEAT, self._on_own_heartbeat))
        deadline = time.monotonic() + _BUS_SETTLE_SECONDS
        try:
            while not self._bus_settled and not self._stopping and time.monotonic() < deadline:
                self._heartbeat()
                # A short poll: the first heartbeats are lost until the PUB has learnt the
                # proxy's subscriptions (a few ms); resending often keeps that off restart time.
                if sub.poll(10, zmq.POLLIN):
                    self._drain_events()
        finally:
            self._subscriptions = [s for s in self._subscriptions if s[1] != self._on_own_heartbeat]
            if not any(p == topics.WORKER_HEARTBEAT for p, _ in self._subscriptions):
                sub.setsockopt(zmq.UNSUBSCRIBE, topic)
        if not self._bus_settled:
            self.log.warning("bus round trip not confirmed; continuing")

    def _close_bus(self) -> None:
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)
        if self._subscriber is not None:
            self._subscriber.close()
            self._subscriber = None
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._wake_r = self._wake_w = None

    def _wake(self) -> None:
        wake = self._wake_w
        if wake is None:
            return
        with contextlib.suppress(OSError):  # full buffer: a wake-up is already pending
            wake.send(b"\0")

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._wake_r.recv(4096):
                pass

    def _drain_events(self) -> None:
        assert self._subscriber is not None
        sub = self._subscriber
        for _ in range(_MAX_BATCH):
            try:
                frames = sub.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            env = sub.handle_frames(frames)
            if env is not None:
                self._dispatch_event(env)

    def _dispatch_event(self, env: Envelope) -> None:
        handlers = [h for prefix, h in self._subscriptions if env.type.startswith(prefix)]
        if not handlers:
            return
        try:
            body = validate_body(env.type, env.body)
        except (ValidationError, ValueError) as exc:
            self.log.warning(
                "invalid event body dropped", type=env.type, src=env.src, error=str(exc)
            )
            return
        for handler in handlers:
            try:
                handler(env, body)
            except Exception:
                self.log.exception("event handler failed", type=env.type, src=env.src)

    def _drain_control(self) -> None:
        assert self._control is not None
        for _ in range(_MAX_BATCH):
            try:
                frames = self._control.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                env = decode(frames[-1])
            except ProtocolError as exc:
                self.log.warning("malformed control frame dropped", error=str(exc))
                continue
            if env.type == topics.CONTROL_REQUEST:
                self._handle_request(env)
            elif env.type != topics.CONTROL_REPLY:
                self.log.warning("unexpected control message dropped", type=env.type)

    def _handle_request(self, env: Envelope) -> None:
        try:
            request = validate_body(env.type, env.body)
        except (ValidationError, ValueError) as exc:
            self._reply(env, error=("bad_request", f"invalid control.request: {exc}"))
            return
        command = _field(request, "command")
        args = _field(request, "args") or {}
        handler = self.handlers.get(str(command))
        if handler is None:
            known = ", ".join(sorted(self.handlers))
            self._reply(
                env,
                error=(
                    "unknown_command",
                    f"worker {self.name!r} has no command {command!r}; known: {known}",
                ),
            )
            return
        try:
            result = handler(dict(args))
        except ControlError as exc:
            self._reply(env, error=(exc.code, exc.reason))
            return
        except Exception as exc:
            self.log.exception("control handler failed", command=command)
            self._reply(env, error=("internal", f"{type(exc).__name__}: {exc}"))
            return
        if isinstance(result, Later):
            self._reply_later(env, str(command), result)
        else:
            self._reply(env, result=result)

    def _reply_later(self, env: Envelope, command: str, later: Later) -> None:
        def done(result: Any, error: BaseException | None) -> None:
            if later.then is not None:
                try:
                    result, error = later.then(result, error), None
                except Exception as exc:
                    error = exc
            if error is None:
                self._reply(env, result=result)
            elif isinstance(error, ControlError):
                self._reply(env, error=(error.code, error.reason))
            else:
                self.log.error(
                    "deferred control handler failed", command=command, error=repr(error)
                )
                self._reply(env, error=("internal", f"{type(error).__name__}: {error}"))

        self.run_in_thread(later.fn, done, name=f"reply-{command}")

    def _reply(
        self, env: Envelope, *, result: Any = None, error: tuple[str, str] | None = None
    ) -> None:
        if self._control is None:
            return
        try:
            payload = to_jsonable_python(result)
        except Exception as exc:  # an unserialisable result is the handler's bug, not fatal
            payload, error = None, ("internal", f"result not serialisable: {exc}")
        reply = reply_envelope(
            env,
            ok=error is None,
            result=payload if error is None else None,
            error={"code": error[0], "reason": error[1]} if error else None,
            src=self.name,
        )
        self._send_control(reply)

    def _send_control(self, env: Envelope) -> None:
        assert self._control is not None
        try:
            frame = encode(env)
        except ProtocolError as exc:  # e.g. a reply over the frame limit: say so, not silence
            if env.type != topics.CONTROL_REPLY:
                raise
            self.log.error("control reply not encodable", error=str(exc))
            env = env.model_copy(
                update={
                    "body": {
                        "request_id": env.body.get("request_id", ""),
                        "ok": False,
                        "result": None,
                        "error": {"code": "internal", "reason": str(exc)},
                    }
                }
            )
            frame = encode(env)
        try:
            self._control.send_multipart([b"", frame], zmq.NOBLOCK)
        except zmq.Again:
            self.log.warning("control socket full; message dropped", type=env.type)

    # ---- jobs -----------------------------------------------------------------------------

    def _deliver_completions(self) -> None:
        while True:
            try:
                completion = self._completions.get_nowait()
            except queue.Empty:
                return
            job = completion.job
            job.done = True
            self._jobs.discard(job)
            if completion.on_done is not None:
                completion.on_done(job.result, job.error)
            elif job.error is not None:
                raise RuntimeError(f"background job {job.name!r} failed") from job.error

    def _drain_jobs(self) -> None:
        """On stop: give running jobs a bounded time to finish and deliver their results."""
        grace = float(self.config.supervisor.stop_grace_seconds)
        deadline = time.monotonic() + max(0.0, grace * 0.6)
        while self._jobs and time.monotonic() < deadline:
            try:
                completion = self._completions.get(timeout=min(0.05, grace))
            except queue.Empty:
                continue
            self._completions.put(completion)
            self._deliver_completions()
        if self._jobs:
            self.log.warning("exiting with jobs still running", jobs=[j.name for j in self._jobs])

    # ---- signals and misc -----------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def _require_loop_thread(self, what: str) -> None:
        if self._loop_thread is not None and threading.get_ident() != self._loop_thread:
            raise RuntimeError(f"{what}() must be called from the worker loop thread")

    def _info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "worker": self.name,
            "pid": os.getpid(),
            "progress": self.progress,
            "ready": self.ready,
            "uptime": round(time.time() - self.started, 3),
            "commands": sorted(self.handlers),
        }


def _field(model: BaseModel | dict[str, Any], name: str) -> Any:
    if isinstance(model, dict):
        return model.get(name)
    return getattr(model, name, None)
