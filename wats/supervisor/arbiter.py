"""The arbiter: the supervisor's one event loop.

Everything that changes a worker's state happens on this thread, woken by events rather than a
polling tick: a worker's exit (a thread per worker blocks in ``wait()`` and pushes to an inproc
socket), a heartbeat or status on the bus, a control request, a signal (through the wakeup fd), or
the next timer (backoff restart, heartbeat deadline, stop escalation, supervisor heartbeat). The
poll timeout is always "until the earliest timer", so a quiet supervisor sleeps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import zmq

from wats.protocol import topics
from wats.protocol.bus import Publisher, Subscriber
from wats.protocol.messages import ErrorCode, WorkerFailure
from wats.protocol.start_failure import EXIT_START_FAILED, StartFailureRecord, take_start_failure
from wats.supervisor.broker import (
    HELLO,
    WORKER_IDENTITY_PREFIX,
    BoundBus,
    CommandError,
    ControlRouter,
)
from wats.supervisor.logs import capture_stream
from wats.supervisor.policy import PolicySettings, RestartPolicy
from wats.supervisor.process import WorkerProcess, reap_children
from wats.supervisor.spec import WorkerSpec, stop_groups
from wats.supervisor.state import SupervisorState, write_state

__all__ = ["Arbiter", "ArbiterSettings", "WorkerState"]

log = structlog.get_logger("wats.supervisor")

# A fresh interpreter imports pydantic, zmq and the worker before its first heartbeat; on a busy
# machine that can take seconds, so the first deadline gets this much on top of the usual one.
STARTUP_ALLOWANCE_SECONDS = 10.0
# After an unplanned exit, keep a warm spare of that worker (see wats.supervisor.standby) this
# long, so a worker that crashes again is replaced in milliseconds, not an interpreter start-up.
# Workers that never crash never get one: the idle footprint stays one process per worker.
WARM_SPARE_SECONDS = 300.0
# A worker whose start fails the same way this many times in a row is marked FAILED with that
# reason (shown in status), instead of restarting until the flapping breaker trips.
START_FAILURE_LIMIT = 3


class WorkerState:
    """The states a worker slot goes through (the ``state`` of ``status``)."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class ArbiterSettings:
    """The timing numbers of the loop (from ``[supervisor]``)."""

    heartbeat_interval: float = 1.0
    heartbeat_misses: int = 3
    heartbeat_grace: float = 0.4
    stop_grace: float = 5.0
    request_timeout: float = 5.0
    startup_allowance: float = STARTUP_ALLOWANCE_SECONDS
    warm_spare_seconds: float = WARM_SPARE_SECONDS
    start_failure_limit: int = START_FAILURE_LIMIT
    failed_retry_seconds: float = 300.0  # the flapping cooldown: a FAILED worker's next try

    @property
    def silence_limit(self) -> float:
        """How long a worker may stay silent before it counts as hung."""
        return self.heartbeat_misses * self.heartbeat_interval + self.heartbeat_grace

    @classmethod
    def from_config(cls, supervisor: Any) -> ArbiterSettings:
        """Pick the loop's numbers out of a ``[supervisor]`` config section."""
        return cls(
            heartbeat_interval=supervisor.heartbeat_interval_seconds,
            heartbeat_misses=supervisor.heartbeat_misses,
            heartbeat_grace=supervisor.heartbeat_grace_seconds,
            stop_grace=supervisor.stop_grace_seconds,
            request_timeout=supervisor.request_timeout_seconds,
            startup_allowance=supervisor.startup_timeout_seconds,
            warm_spare_seconds=supervisor.warm_spare_seconds,
            start_failure_limit=supervisor.start_failure_limit,
            failed_retry_seconds=supervisor.flap_cooldown_seconds,
        )


@dataclass
class WorkerSlot:
    """Everything the arbiter knows about one configured worker, across its incarnations."""

    spec: WorkerSpec
    policy: RestartPolicy
    state: str = WorkerState.STOPPED
    process: WorkerProcess | None = None
    restarts: int = 0
    last_exit: dict[str, Any] | None = None
    last_heartbeat: float | None = None
    progress: int = 0
    ready: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    hello: bool = False
    timer: float | None = None  # monotonic: restart (BACKOFF/FAILED), kill (STOPPING), watchdog
    stop_intent: str | None = None  # "stop" | "restart" | "shutdown"
    kill_reason: str | None = None  # "hung" when the watchdog killed it
    spare: WorkerProcess | None = None  # a warm standby, kept while spare_until is ahead
    spare_until: float = 0.0
    start_failure: StartFailureRecord | None = None  # the last start's failure, if it failed
    start_failures: int = 0  # consecutive starts that failed with that same failure
    failure: dict[str, Any] | None = None  # why the slot is FAILED: {reason, message}

    @property
    def name(self) -> str:
        """The worker's configured name."""
        return self.spec.name


class Arbiter:
    """Runs the workers of one instance until shutdown; see the module docstring for the loop."""

    def __init__(
        self,
        ctx: zmq.Context[Any],
        bus: BoundBus,
        specs: list[WorkerSpec],
        settings: ArbiterSettings,
        policy: PolicySettings,
        worker_env: dict[str, str],
        state: SupervisorState,
        state_file: Path,
    ) -> None:
        self._ctx = ctx
        self._bus = bus
        self._settings = settings
        self._worker_env = worker_env
        self._state = state
        self._state_file = state_file
        self._slots = {s.name: WorkerSlot(s, RestartPolicy(policy)) for s in specs}
        runtime = worker_env.get("WATS_RUNTIME_DIR")
        self._runtime_dir = Path(runtime) if runtime else None
        self._started_mono = time.monotonic()
        self._publisher = Publisher(ctx, bus.addresses.events_in, "supervisor")
        self._subscriber = Subscriber(
            ctx, bus.addresses.events_out, [topics.WORKER_HEARTBEAT, topics.CONNECTION_STATUS]
        )
        self._router = ControlRouter(
            bus.router, self._command, self._check_target, settings.request_timeout
        )
        self._exit_address = f"inproc://worker-exits-{id(self)}"
        self._exits = ctx.socket(zmq.PULL)
        self._exits.bind(self._exit_address)
        self._connection: dict[str, Any] | None = None
        self._next_beat = time.monotonic()
        self._shutting_down = False
        self._stop_groups: list[list[str]] = []
        self._done = False
        self._last_refs: dict[str, list[Any]] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self, install_signals: bool = True) -> None:
        """Start every worker; serve until shutdown (SIGTERM/SIGINT or a ``shutdown`` request)."""
        if install_signals:
            self._install_signals()
        log.info(
            "supervisor started",
            pid=os.getpid(),
            instance=self._state.instance,
            workers=list(self._slots),
            control=self._bus.addresses.control,
        )
        for slot in self._slots.values():
            self._spawn(slot)
        poller = zmq.Poller()
        poller.register(self._exits, zmq.POLLIN)
        poller.register(self._subscriber.socket, zmq.POLLIN)
        poller.register(self._router.socket, zmq.POLLIN)
        poller.register(self._wake_r.fileno(), zmq.POLLIN)
        try:
            while not self._done:
                events = dict(poller.poll(self._poll_timeout_ms()))
                if self._wake_r.fileno() in events:
                    self._drain_wakeups()
                if self._exits in events:
                    self._drain_exits()
                if self._subscriber.socket in events:
                    self._drain_bus()
                if self._router.socket in events:
                    self._router.handle_ready()
                self._run_timers()
        finally:
            self._emergency_stop()
            self._close()
        log.info("supervisor stopped", pid=os.getpid())

    def request_shutdown(self) -> None:
        """Begin the ordered shutdown: producers, then consumers, then services."""
        if self._shutting_down:
            return
        log.info("shutdown requested")
        self._shutting_down = True
        for slot in self._slots.values():
            self._drop_spare(slot)
        self._stop_groups = [
            [s.name for s in group]
            for group in stop_groups(slot.spec for slot in self._slots.values())
        ]
        self._advance_shutdown()

    def wake(self) -> None:
        """Thread-safe: ask the loop to shut down (used by signal handlers and tests)."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"s")

    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)  # the wakeup fd carries the signal number
        with contextlib.suppress(AttributeError):
            signal.signal(signal.SIGHUP, lambda *_: None)

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(64):
                pass
        self.request_shutdown()

    def _close(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signal.SIGTERM) is not None:
                signal.set_wakeup_fd(-1)
        self._publisher.close()
        self._subscriber.close()
        self._exits.close(linger=0)
        self._wake_r.close()
        self._wake_w.close()
        self._state.workers = {}
        with contextlib.suppress(OSError):
            write_state(self._state_file, self._state)

    def _emergency_stop(self) -> None:
        """On the way out (normally nothing is left): no worker tree may outlive the loop."""
        for slot in self._slots.values():
            self._drop_spare(slot)
            if slot.process is not None:
                slot.process.kill_tree()

    # -- timers ---------------------------------------------------------------------------

    def _poll_timeout_ms(self) -> int:
        deadlines = [self._next_beat]
        deadlines += [s.timer for s in self._slots.values() if s.timer is not None]
        routed = self._router.next_deadline()
        if routed is not None:
            deadlines.append(routed)
        wait = min(deadlines) - time.monotonic()
        return max(0, int(wait * 1000) + 1)

    def _run_timers(self) -> None:
        now = time.monotonic()
        if now >= self._next_beat:
            self._next_beat = now + self._settings.heartbeat_interval
            self._beat()
        self._router.expire()
        for slot in self._slots.values():
            if slot.timer is None or slot.timer > now:
                continue
            slot.timer = None
            if slot.state in (WorkerState.BACKOFF, WorkerState.FAILED):
                if slot.state == WorkerState.FAILED:
                    log.info("retrying failed worker after cooldown", worker=slot.name)
                    slot.policy.reset()
                self._spawn(slot)
            elif slot.state == WorkerState.STOPPING and slot.process is not None:
                log.warning(
                    "worker did not stop in time; killing its tree",
                    worker=slot.name,
                    pid=slot.process.pid,
                    grace=self._settings.stop_grace,
                )
                slot.process.kill_tree()
            elif slot.state in (WorkerState.STARTING, WorkerState.RUNNING) and slot.process:
                silent = now - (slot.last_heartbeat or slot.process.started_mono)
                log.warning(
                    "worker is hung (no heartbeat); killing its tree",
                    worker=slot.name,
                    pid=slot.process.pid,
                    silent_seconds=round(silent, 3),
                )
                slot.kill_reason = "hung"
                slot.process.kill_tree()

    def _beat(self) -> None:
        """The supervisor's own heartbeat, plus housekeeping that may run once per interval."""
        self._publisher.publish(
            topics.SUPERVISOR_HEARTBEAT, {"pid": os.getpid(), "instance": self._state.instance}
        )
        now = time.monotonic()
        worker_pids = [s.process.pid for s in self._slots.values() if s.process is not None]
        worker_pids += [s.spare.pid for s in self._slots.values() if s.spare is not None]
        for slot in self._slots.values():
            if slot.process is not None:
                slot.process.refresh_tree()
            if slot.spare is not None and slot.spare_until <= now:
                self._drop_spare(slot)
        reap_children(worker_pids)
        self._save_state()

    def _watchdog(self, slot: WorkerSlot) -> None:
        if slot.process is None:
            return
        if slot.last_heartbeat is None:
            base = slot.process.started_mono + self._settings.startup_allowance
        else:
            base = slot.last_heartbeat
        slot.timer = base + self._settings.silence_limit

    # -- workers --------------------------------------------------------------------------

    def _spawn(self, slot: WorkerSlot) -> None:
        slot.stop_intent = None
        slot.kill_reason = None
        slot.last_heartbeat = None
        slot.ready = False
        slot.hello = False
        slot.progress = 0
        slot.detail = {}
        spare, slot.spare = slot.spare, None
        if spare is not None and spare.activate():
            process = spare
        else:
            if spare is not None:
                spare.discard()
            try:
                process = WorkerProcess.spawn(slot.spec, self._worker_env)
            except OSError as exc:
                log.error("cannot start worker", worker=slot.name, error=str(exc))
                slot.process = None
                self._after_unplanned_exit(slot, ran_for=0.0)
                return
            self._watch(slot.name, process)
        slot.process = process
        slot.state = WorkerState.STARTING
        self._watchdog(slot)
        log.info(
            "worker started",
            worker=slot.name,
            pid=process.pid,
            target=slot.spec.target,
            warm=process is spare,
        )
        self._publisher.publish(
            topics.SUPERVISOR_WORKER_STARTED, {"worker": slot.name, "pid": process.pid}
        )
        self._save_state()

    def _watch(self, name: str, process: WorkerProcess) -> None:
        """Start the output-capture threads and the exit-waiting thread of a new process."""
        for stream, pipe in process.streams.items():
            capture_stream(name, process.pid, stream, pipe)
        threading.Thread(
            target=self._wait_for_exit, args=(name, process), name=f"wait-{name}", daemon=True
        ).start()

    def _start_spare(self, slot: WorkerSlot) -> None:
        if slot.spare is not None or self._shutting_down:
            return
        try:
            slot.spare = WorkerProcess.spawn(slot.spec, self._worker_env, standby=True)
        except OSError as exc:
            log.warning("cannot start a warm spare", worker=slot.name, error=str(exc))
            return
        self._watch(slot.name, slot.spare)
        log.debug("warm spare started", worker=slot.name, pid=slot.spare.pid)
        self._save_state()

    def _drop_spare(self, slot: WorkerSlot) -> None:
        spare, slot.spare = slot.spare, None
        if spare is not None:
            spare.discard()

    def _wait_for_exit(self, name: str, process: WorkerProcess) -> None:
        """Thread body: block in wait(), then wake the loop with (name, pid, returncode)."""
        code = process.wait()
        push = self._ctx.socket(zmq.PUSH)
        try:
            push.connect(self._exit_address)
            push.send_multipart([name.encode(), str(process.pid).encode(), str(code).encode()])
        finally:
            push.close(linger=1000)

    def _drain_exits(self) -> None:
        while True:
            try:
                name, pid, code = self._exits.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            slot = self._slots.get(name.decode())
            if slot is not None and slot.spare is not None and slot.spare.pid == int(pid):
                log.warning("warm spare exited", worker=slot.name, pid=int(pid), code=int(code))
                slot.spare = None
                continue
            if slot is None or slot.process is None or slot.process.pid != int(pid):
                continue
            self._on_exit(slot, int(code))

    def _on_exit(self, slot: WorkerSlot, returncode: int) -> None:
        process = slot.process
        assert process is not None
        process.kill_leftover_descendants()
        exit_code, sig = (None, -returncode) if returncode < 0 else (returncode, None)
        if slot.kill_reason == "hung":
            reason = "hung"
        elif slot.stop_intent is not None:
            reason = "stopped"
        elif sig is not None:
            reason = "killed"
        else:
            reason = "exit"
        ran_for = process.uptime()
        failure = None
        if exit_code == EXIT_START_FAILED and self._runtime_dir is not None:
            failure = take_start_failure(self._runtime_dir, slot.name)
        if failure is not None and reason == "exit":
            reason = "start_failed"
        self._count_start_failure(slot, failure if reason == "start_failed" else None)
        slot.last_exit = {"code": exit_code, "signal": sig, "reason": reason}
        if failure is not None:
            slot.last_exit["failure"] = failure.to_json()
        slot.process = None
        slot.timer = None
        slot.ready = False
        slot.hello = False
        level = log.info if reason == "stopped" else log.warning
        if failure is not None:
            # The worker logged its reason; one line here, no traceback anywhere.
            level(
                "worker could not start",
                worker=slot.name,
                pid=process.pid,
                reason=failure.reason.value,
                error=failure.message,
                attempt=slot.start_failures,
            )
        else:
            level(
                "worker exited",
                worker=slot.name,
                pid=process.pid,
                exit_code=exit_code,
                signal=sig,
                reason=reason,
                ran_for=round(ran_for, 3),
            )
        self._publisher.publish(
            topics.SUPERVISOR_WORKER_EXITED,
            {
                "worker": slot.name,
                "pid": process.pid,
                "exit_code": exit_code,
                "signal": sig,
                "reason": reason,
                **({"failure": failure.to_json()} if failure is not None else {}),
            },
        )
        self._router.fail_target(slot.name, f"worker {slot.name!r} exited ({reason})")
        intent = slot.stop_intent
        if intent == "restart" and not self._shutting_down:
            slot.policy.reset()
            self._spawn(slot)
        elif intent is not None or self._shutting_down:
            self._mark_stopped(slot)
        else:
            self._after_unplanned_exit(slot, ran_for)
        self._save_state()

    def _count_start_failure(self, slot: WorkerSlot, failure: StartFailureRecord | None) -> None:
        """Count consecutive starts that failed the same way; any other exit ends the streak."""
        if failure is None:
            slot.start_failure, slot.start_failures = None, 0
        elif failure == slot.start_failure:
            slot.start_failures += 1
        else:
            slot.start_failure, slot.start_failures = failure, 1

    def _fail_start(self, slot: WorkerSlot) -> None:
        """The same start failure ``start_failure_limit`` times: FAILED with that reason."""
        failure = slot.start_failure
        assert failure is not None
        retry_in = self._settings.failed_retry_seconds
        slot.state = WorkerState.FAILED
        slot.failure = failure.to_json()
        slot.timer = time.monotonic() + retry_in if retry_in > 0 else None
        log.error(
            "worker fails the same way at every start; marked FAILED",
            worker=slot.name,
            reason=failure.reason.value,
            error=failure.message,
            starts=slot.start_failures,
            retry_in=retry_in,
        )
        self._publisher.publish(
            topics.SUPERVISOR_WORKER_FAILED,
            {
                "worker": slot.name,
                "restarts": slot.start_failures,
                "window": 0.0,
                "retry_in": float(retry_in),
                "reason": failure.reason.value,
                "message": failure.message,
            },
        )

    def _after_unplanned_exit(self, slot: WorkerSlot, ran_for: float) -> None:
        if self._settings.warm_spare_seconds > 0:
            slot.spare_until = time.monotonic() + self._settings.warm_spare_seconds
        if slot.start_failures >= self._settings.start_failure_limit:
            slot.policy.on_exit(ran_for)  # the streak still counts towards the backoff
            self._fail_start(slot)
            return
        decision = slot.policy.on_exit(ran_for)
        window = slot.policy.settings.flap_window_seconds
        if decision.failed:
            slot.state = WorkerState.FAILED
            slot.failure = {
                "reason": WorkerFailure.FLAPPING.value,
                "message": f"{decision.restarts} restarts within {window:g} s",
            }
            slot.timer = time.monotonic() + decision.retry_in
            log.error(
                "worker is flapping; marked FAILED",
                worker=slot.name,
                restarts=decision.restarts,
                window=window,
                retry_in=decision.retry_in,
            )
            self._publisher.publish(
                topics.SUPERVISOR_WORKER_FAILED,
                {
                    "worker": slot.name,
                    "restarts": decision.restarts,
                    "window": float(window),
                    "retry_in": float(decision.retry_in),
                },
            )
            return
        slot.restarts += 1
        self._publisher.publish(
            topics.SUPERVISOR_WORKER_RESTARTING,
            {"worker": slot.name, "attempt": decision.attempt, "delay": float(decision.delay)},
        )
        if decision.delay <= 0:
            self._spawn(slot)
        else:
            log.info("worker restarting after backoff", worker=slot.name, delay=decision.delay)
            slot.state = WorkerState.BACKOFF
            slot.timer = time.monotonic() + decision.delay

    def _mark_stopped(self, slot: WorkerSlot) -> None:
        slot.state = WorkerState.STOPPED
        slot.timer = None
        slot.stop_intent = None
        self._publisher.publish(topics.SUPERVISOR_WORKER_STOPPED, {"worker": slot.name})
        if self._shutting_down:
            self._advance_shutdown()

    def _stop(self, slot: WorkerSlot, intent: str) -> None:
        if slot.process is None:
            if slot.state != WorkerState.STOPPED:
                self._mark_stopped(slot)
            return
        slot.stop_intent = intent
        if slot.state == WorkerState.STOPPING:
            return
        slot.state = WorkerState.STOPPING
        slot.timer = time.monotonic() + self._settings.stop_grace
        # In a shutdown the "worker exited" line says it all (one line per worker on Ctrl-C).
        level = log.debug if self._shutting_down else log.info
        level("stopping worker", worker=slot.name, pid=slot.process.pid)
        slot.process.terminate()

    def _advance_shutdown(self) -> None:
        while self._stop_groups:
            group = [self._slots[name] for name in self._stop_groups[0]]
            running = [s for s in group if s.process is not None]
            for slot in group:
                if slot.process is None and slot.state != WorkerState.STOPPED:
                    slot.state = WorkerState.STOPPED
                    slot.timer = None
            if running:
                for slot in running:
                    if slot.state != WorkerState.STOPPING:
                        self._stop(slot, "shutdown")
                return
            self._stop_groups.pop(0)
        self._done = True

    # -- bus ------------------------------------------------------------------------------

    def _drain_bus(self, budget: int = 500) -> None:
        for _ in range(budget):
            try:
                frames = self._subscriber.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            env = self._subscriber.handle_frames(frames)
            if env is None:
                continue
            if env.type == topics.WORKER_HEARTBEAT:
                self._on_heartbeat(env.body)
            elif env.type == topics.CONNECTION_STATUS:
                self._connection = dict(env.body)

    def _on_heartbeat(self, body: dict[str, Any]) -> None:
        slot = self._slots.get(str(body.get("worker")))
        if slot is None or slot.process is None or body.get("pid") != slot.process.pid:
            return  # a late beat from an earlier incarnation, or a worker we do not run
        slot.last_heartbeat = time.monotonic()
        slot.progress = int(body.get("progress", 0))
        slot.ready = bool(body.get("ready", False))
        detail = body.get("detail")
        slot.detail = dict(detail) if isinstance(detail, dict) else {}
        if slot.state == WorkerState.STARTING:
            slot.state = WorkerState.RUNNING
            log.info("worker running", worker=slot.name, pid=slot.process.pid)
            if slot.spare_until > time.monotonic():
                self._start_spare(slot)  # after start-up, so the two never compete for CPU
        if slot.state == WorkerState.RUNNING:
            self._watchdog(slot)

    # -- control --------------------------------------------------------------------------

    def _check_target(self, name: str) -> None:
        slot = self._slots.get(name)
        if slot is None:
            raise CommandError(ErrorCode.UNKNOWN_WORKER, f"no worker named {name!r}")
        if slot.process is None or slot.state not in (WorkerState.STARTING, WorkerState.RUNNING):
            raise CommandError(
                ErrorCode.WORKER_UNAVAILABLE, f"worker {name!r} is {slot.state}, not running"
            )

    def _slot_arg(self, args: dict[str, Any]) -> WorkerSlot:
        name = args.get("worker")
        if not isinstance(name, str) or not name:
            raise CommandError(ErrorCode.BAD_REQUEST, "args.worker (a worker name) is required")
        slot = self._slots.get(name)
        if slot is None:
            known = ", ".join(sorted(self._slots)) or "none"
            raise CommandError(
                ErrorCode.UNKNOWN_WORKER, f"no worker named {name!r} (known: {known})"
            )
        return slot

    def _command(self, command: str, args: dict[str, Any], identity: bytes) -> Any:
        handler: Callable[[dict[str, Any], bytes], Any] | None = {
            "ping": self._cmd_ping,
            "status": self._cmd_status,
            "start": self._cmd_start,
            "stop": self._cmd_stop,
            "restart": self._cmd_restart,
            "shutdown": self._cmd_shutdown,
            HELLO: self._cmd_hello,
        }.get(command)
        if handler is None:
            raise CommandError(ErrorCode.UNKNOWN_COMMAND, f"unknown command {command!r}")
        return handler(args, identity)

    def _cmd_ping(self, _args: dict[str, Any], _identity: bytes) -> dict[str, Any]:
        return {"pid": os.getpid(), "instance": self._state.instance}

    def _cmd_hello(self, _args: dict[str, Any], identity: bytes) -> dict[str, Any]:
        if identity.startswith(WORKER_IDENTITY_PREFIX):
            slot = self._slots.get(
                identity[len(WORKER_IDENTITY_PREFIX) :].decode("utf-8", "replace")
            )
            if slot is not None:
                slot.hello = True
        return {"pid": os.getpid(), "instance": self._state.instance}

    def _refuse_during_shutdown(self) -> None:
        if self._shutting_down:
            raise CommandError(ErrorCode.BAD_REQUEST, "the supervisor is shutting down")

    def _cmd_start(self, args: dict[str, Any], _identity: bytes) -> dict[str, Any]:
        slot = self._slot_arg(args)
        self._refuse_during_shutdown()
        self._forget_failure(slot)
        if slot.process is None:
            slot.policy.reset()
            slot.timer = None
            self._spawn(slot)
        elif slot.state == WorkerState.STOPPING:
            slot.stop_intent = "restart"
        return {"worker": slot.name, "state": slot.state}

    @staticmethod
    def _forget_failure(slot: WorkerSlot) -> None:
        """A manual start or restart: a fresh streak of start failures."""
        slot.start_failure, slot.start_failures, slot.failure = None, 0, None

    def _cmd_stop(self, args: dict[str, Any], _identity: bytes) -> dict[str, Any]:
        slot = self._slot_arg(args)
        slot.spare_until = 0.0
        self._drop_spare(slot)
        self._stop(slot, "stop")
        return {"worker": slot.name, "state": slot.state}

    def _cmd_restart(self, args: dict[str, Any], _identity: bytes) -> dict[str, Any]:
        slot = self._slot_arg(args)
        self._refuse_during_shutdown()
        self._forget_failure(slot)
        if slot.process is None:
            slot.policy.reset()
            slot.timer = None
            self._spawn(slot)
        else:
            self._stop(slot, "restart")
        return {"worker": slot.name, "state": slot.state}

    def _cmd_shutdown(self, _args: dict[str, Any], _identity: bytes) -> dict[str, Any]:
        self.request_shutdown()
        return {"state": "STOPPING"}

    def _cmd_status(self, _args: dict[str, Any], _identity: bytes) -> dict[str, Any]:
        return self.status()

    def status(self) -> dict[str, Any]:
        """The ``status`` reply: the supervisor, the connection and every worker."""
        now = time.monotonic()
        workers = []
        for slot in self._slots.values():
            proc = slot.process
            stats = proc.stats() if proc is not None else {"rss": None, "cpu_percent": None}
            workers.append(
                {
                    "name": slot.name,
                    "state": slot.state,
                    "role": slot.spec.role,
                    "pid": proc.pid if proc is not None else None,
                    "restarts": slot.restarts,
                    "uptime": round(proc.uptime(), 3) if proc is not None else None,
                    "rss": stats["rss"],
                    "cpu_percent": stats["cpu_percent"],
                    "last_exit": slot.last_exit,
                    "failure": slot.failure if slot.state == WorkerState.FAILED else None,
                    "heartbeat_age": (
                        round(now - slot.last_heartbeat, 3)
                        if slot.last_heartbeat is not None
                        else None
                    ),
                    "progress": slot.progress,
                    "ready": slot.ready,
                    "detail": slot.detail,
                }
            )
        return {
            "supervisor": {
                "pid": os.getpid(),
                "instance": self._state.instance,
                "started": self._state.started,
                "uptime": round(now - self._started_mono, 3),
                "config": self._state.config,
            },
            "connection": self._connection,
            "workers": workers,
        }

    # -- state file -----------------------------------------------------------------------

    def _save_state(self) -> None:
        refs = {}
        for slot in self._slots.values():
            procs = [p for p in (slot.process, slot.spare) if p is not None]
            if procs:
                refs[slot.name] = [ref for p in procs for ref in p.refs()]
        if refs == self._last_refs:
            return
        self._last_refs = refs
        self._state.workers = refs
        try:
            write_state(self._state_file, self._state)
        except OSError as exc:
            log.error("cannot write the state file", path=str(self._state_file), error=str(exc))
