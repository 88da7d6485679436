"""A stand-in for the supervisor's side of the bus, to test worker processes on their own.

``BusHarness`` binds what the supervisor binds — XSUB (events in) and XPUB (events out) joined by
``zmq.proxy_steerable`` in a thread, and a ROUTER for control — and writes ``endpoints.json`` to
a runtime dir, so a worker started with ``python -m wats.workers`` finds a real bus. It records
every event, routes control requests to a worker, can publish ``supervisor.heartbeat`` (and stop,
to make a worker an orphan) and can put garbage on the bus.

``WorkerProcess`` starts one worker exactly as the supervisor's launch contract says (fresh
interpreter, the ``WATS_*`` environment, this test process as the supervisor pid).

Waiting is always "until a condition holds or a deadline passes" (``wait_for``); never a sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import zmq

from wats.config.load import dump_runtime_config
from wats.config.models import ClientConfig
from wats.protocol import topics
from wats.protocol.addresses import BusAddresses, write_endpoints
from wats.protocol.bus import Publisher, Subscriber, bind, reply_envelope
from wats.protocol.codec import ProtocolError, decode, encode, make_envelope
from wats.protocol.envelope import Envelope

__all__ = [
    "BusHarness",
    "ControlAnswer",
    "WorkerProcess",
    "make_config",
    "short_tempdir",
    "wait_until",
]

HARNESS_SRC = "harness"


def wait_until(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.02) -> Any:
    """Return ``condition()``'s first truthy value, or fail naming ``what`` after ``timeout``.

    For conditions no event announces (a process gone, a file written); bus events have
    :meth:`BusHarness.wait_for`, which wakes on arrival.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        threading.Event().wait(step)  # a poll interval, not synchronisation: we re-check


@contextmanager
def short_tempdir(prefix: str = "wb-") -> Iterator[Path]:
    """A fresh folder with a short path (ipc:// socket paths must fit ~100 bytes), removed after."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_config(
    data_dir: Path,
    runtime_dir: Path,
    *,
    heartbeat: float = 0.2,
    orphan_timeout: float = 1.0,
    stop_grace: float = 3.0,
    **sections: Mapping[str, Any],
) -> ClientConfig:
    """A config with test-sized timings and private folders; ``sections`` override tables
    (e.g. ``health={"interval_seconds": 0.3}``, ``server={"url": ...}``)."""
    data: dict[str, Any] = {
        "paths": {"data_dir": str(data_dir), "runtime_dir": str(runtime_dir)},
        "supervisor": {
            "heartbeat_interval_seconds": heartbeat,
            "orphan_timeout_seconds": orphan_timeout,
            "stop_grace_seconds": stop_grace,
        },
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **dict(value)}
    return ClientConfig.model_validate(data)


@dataclass(frozen=True)
class ControlAnswer:
    """A worker's ``control.reply``: ``ok`` + ``result``, or ``error`` ({code, reason})."""

    ok: bool
    result: Any
    error: dict[str, Any] | None


class BusHarness:
    """The supervisor's bus without the supervisor (see the module docstring)."""

    def __init__(self, runtime_dir: Path, *, ipc: bool | None = None) -> None:
        self.runtime_dir = Path(runtime_dir)
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._ipc = ipc
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.addresses: BusAddresses | None = None
        self.events: list[Envelope] = []
        self.hellos: dict[str, int] = {}
        self._events_changed = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stop_sockets: list[zmq.Socket[Any]] = []
        self._router: zmq.Socket[Any] | None = None
        self._router_lock = threading.Lock()
        self._publisher: Publisher | None = None
        self._beat_stop: threading.Event | None = None
        self._beat_thread: threading.Thread | None = None
        self._recorder: Subscriber | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> BusHarness:
        """Bind, start the proxy and the recorder, write ``endpoints.json``."""
        wanted = BusAddresses.for_runtime_dir(self.runtime_dir, ipc=self._ipc)
        xsub = self.ctx.socket(zmq.XSUB)
        xpub = self.ctx.socket(zmq.XPUB)
        router = self.ctx.socket(zmq.ROUTER)
        for sock in (xsub, xpub, router):
            sock.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.addresses = BusAddresses(
            events_in=bind(xsub, wanted.events_in),
            events_out=bind(xpub, wanted.events_out),
            control=bind(router, wanted.control),
        )
        self._router = router
        write_endpoints(self.runtime_dir, self.addresses)
        self._spawn(self._run_proxy, "harness-proxy", xsub, xpub)
        self._recorder = Subscriber(self.ctx, self.addresses.events_out, [""])
        self._spawn(self._run_recorder, "harness-recorder", self._recorder)
        self._publisher = Publisher(self.ctx, self.addresses.events_in, "supervisor")
        return self

    def _spawn(self, fn: Callable[..., None], name: str, *args: Any) -> None:
        # Each thread gets an inproc PAIR to be told to stop: a wake-up, not a polling tick.
        endpoint = f"inproc://stop-{name}-{id(self)}"
        stopper = self.ctx.socket(zmq.PAIR)
        stopper.setsockopt(zmq.LINGER, 0)
        stopper.bind(endpoint)
        listener = self.ctx.socket(zmq.PAIR)
        listener.setsockopt(zmq.LINGER, 0)
        listener.connect(endpoint)
        self._stop_sockets.append(stopper)
        thread = threading.Thread(target=fn, args=(*args, listener), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    @staticmethod
    def _run_proxy(xsub: zmq.Socket[Any], xpub: zmq.Socket[Any], ctrl: zmq.Socket[Any]) -> None:
        try:
            zmq.proxy_steerable(xsub, xpub, None, ctrl)
        except zmq.ContextTerminated:
            pass
        finally:
            for sock in (xsub, xpub, ctrl):
                sock.close(linger=0)

    def _run_recorder(self, sub: Subscriber, stop: zmq.Socket[Any]) -> None:
        poller = zmq.Poller()
        poller.register(sub.socket, zmq.POLLIN)
        poller.register(stop, zmq.POLLIN)
        try:
            while True:
                ready = dict(poller.poll())
                if stop in ready:
                    return
                env = sub.recv(timeout=0)
                while env is not None:
                    with self._events_changed:
                        self.events.append(env)
                        self._events_changed.notify_all()
                    env = sub.recv(timeout=0)
        finally:
            sub.close()
            stop.close(linger=0)

    def close(self) -> None:
        """Stop the threads and close every socket."""
        self.stop_supervisor_heartbeat()
        for stopper in self._stop_sockets:
            with suppress(zmq.ZMQError):
                stopper.send(b"TERMINATE")
        for thread in self._threads:
            thread.join(5)
        for stopper in self._stop_sockets:
            stopper.close(linger=0)
        if self._publisher is not None:
            self._publisher.close(linger_ms=0)
        if self._router is not None:
            self._router.close(linger=0)
        self.ctx.term()

    def __enter__(self) -> BusHarness:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- config ---------------------------------------------------------------------------

    def write_config(self, config: ClientConfig) -> Path:
        """Dump the effective config where workers will read it; returns its path."""
        path = self.runtime_dir / "config.json"
        dump_runtime_config(config, path)
        return path

    # ---- events -----------------------------------------------------------------------------

    def select(
        self, type_: str | None = None, src: str | None = None, since: int = 0
    ) -> list[Envelope]:
        """Recorded events (from index ``since``) of a type (prefix) and/or sender."""
        with self._events_changed:
            found = list(self.events[since:])
        return [
            e
            for e in found
            if (type_ is None or e.type.startswith(type_)) and (src is None or e.src == src)
        ]

    def mark(self) -> int:
        """An index into the recorded events: pass as ``since`` to see only later ones."""
        with self._events_changed:
            return len(self.events)

    def wait_for(
        self,
        type_: str,
        predicate: Callable[[Envelope], bool] = lambda e: True,
        *,
        src: str | None = None,
        since: int = 0,
        timeout: float = 10.0,
    ) -> Envelope:
        """The first recorded event (from ``since``) matching; waits until it arrives or fails."""
        deadline = time.monotonic() + timeout
        with self._events_changed:
            position = since
            while True:
                for env in self.events[position:]:
                    if (
                        env.type.startswith(type_)
                        and (src is None or env.src == src)
                        and predicate(env)
                    ):
                        return env
                position = len(self.events)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [f"{e.src}:{e.type}" for e in self.events[since:]][-20:]
                    raise AssertionError(
                        f"no {type_!r} event from {src or 'anyone'} matched in {timeout}s; "
                        f"last events: {seen}"
                    )
                self._events_changed.wait(remaining)

    def publish(self, type_: str, body: dict[str, Any]) -> Envelope:
        """Publish an event as the supervisor would (from the test thread)."""
        assert self._publisher is not None
        return self._publisher.publish(type_, body)

    def publish_raw(self, frames: list[bytes]) -> None:
        """Put arbitrary frames on the bus (garbage tests), as another publisher would."""
        assert self._publisher is not None
        self._publisher.socket.send_multipart(frames)

    # ---- supervisor heartbeat ---------------------------------------------------------------

    def start_supervisor_heartbeat(self, interval: float, pid: int | None = None) -> None:
        """Publish ``supervisor.heartbeat`` every ``interval`` from a thread of its own."""
        assert self.addresses is not None
        self.stop_supervisor_heartbeat()
        stop = threading.Event()
        publisher = Publisher(self.ctx, self.addresses.events_in, "supervisor")
        body = {"pid": pid or os.getpid(), "instance": "test"}

        def beat() -> None:
            try:
                while not stop.is_set():
                    publisher.publish(topics.SUPERVISOR_HEARTBEAT, body)
                    stop.wait(interval)  # the heartbeat's pace, not synchronisation
            finally:
                publisher.close(linger_ms=0)

        self._beat_stop = stop
        self._beat_thread = threading.Thread(target=beat, name="harness-beat", daemon=True)
        self._beat_thread.start()

    def stop_supervisor_heartbeat(self) -> None:
        """Go silent, as a SIGKILLed supervisor would."""
        if self._beat_stop is not None and self._beat_thread is not None:
            self._beat_stop.set()
            self._beat_thread.join(5)
        self._beat_stop = self._beat_thread = None

    # ---- control ------------------------------------------------------------------------------

    def request(
        self,
        worker: str,
        command: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float = 10.0,
    ) -> ControlAnswer:
        """Route ``command`` to ``worker`` (identity ``worker:<name>``) and wait for its reply."""
        env = make_envelope(
            topics.CONTROL_REQUEST,
            {"command": command, "args": dict(args or {}), "target": worker},
            "cli:test",
            0,
        )
        deadline = time.monotonic() + timeout
        with self._router_lock:
            self._send_routed(worker, encode(env), deadline)
            while True:
                reply = self._next_control(deadline)
                if reply is None:
                    raise AssertionError(f"no reply from {worker!r} to {command!r} in {timeout}s")
                if reply.type == topics.CONTROL_REPLY and reply.body.get("request_id") == env.id:
                    return ControlAnswer(
                        ok=reply.body["ok"],
                        result=reply.body.get("result"),
                        error=reply.body.get("error"),
                    )

    def request_many(
        self,
        worker: str,
        requests: list[tuple[str, Mapping[str, Any]]],
        *,
        timeout: float = 10.0,
    ) -> list[ControlAnswer]:
        """Send all ``(command, args)`` at once, then collect every reply (in request order)."""
        envs = [
            make_envelope(
                topics.CONTROL_REQUEST,
                {"command": command, "args": dict(args), "target": worker},
                "cli:test",
                0,
            )
            for command, args in requests
        ]
        deadline = time.monotonic() + timeout
        answers: dict[str, ControlAnswer] = {}
        with self._router_lock:
            for env in envs:
                self._send_routed(worker, encode(env), deadline)
            while len(answers) < len(envs):
                reply = self._next_control(deadline)
                if reply is None:
                    raise AssertionError(
                        f"{len(envs) - len(answers)} replies missing after {timeout}s"
                    )
                if reply.type == topics.CONTROL_REPLY:
                    answers[reply.body.get("request_id", "")] = ControlAnswer(
                        ok=reply.body["ok"],
                        result=reply.body.get("result"),
                        error=reply.body.get("error"),
                    )
        return [answers[env.id] for env in envs]

    def send_raw_control(self, worker: str, frames: list[bytes], timeout: float = 5.0) -> None:
        """Send arbitrary frames to a worker's DEALER (after the routing identity)."""
        with self._router_lock:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    assert self._router is not None
                    self._router.send_multipart([b"worker:" + worker.encode(), *frames])
                    return
                except zmq.ZMQError as exc:
                    if exc.errno != zmq.EHOSTUNREACH or time.monotonic() > deadline:
                        raise
                    self._next_control(min(deadline, time.monotonic() + 0.05))

    def wait_hello(self, worker: str, timeout: float = 10.0) -> int:
        """The pid the worker announced in its ``worker.hello``; waits for it."""
        deadline = time.monotonic() + timeout
        with self._router_lock:
            while worker not in self.hellos:
                if self._next_control(deadline) is None and time.monotonic() >= deadline:
                    raise AssertionError(f"no worker.hello from {worker!r} in {timeout}s")
            return self.hellos[worker]

    def _send_routed(self, worker: str, frame: bytes, deadline: float) -> None:
        assert self._router is not None
        while True:
            try:
                self._router.send_multipart([b"worker:" + worker.encode(), b"", frame])
                return
            except zmq.ZMQError as exc:
                # ROUTER_MANDATORY: the worker's DEALER is not connected (yet).
                if exc.errno != zmq.EHOSTUNREACH or time.monotonic() > deadline:
                    raise AssertionError(f"worker {worker!r} is not connected") from exc
                self._next_control(min(deadline, time.monotonic() + 0.05))

    def _next_control(self, deadline: float) -> Envelope | None:
        """One control message (hellos are recorded and answered as the supervisor would)."""
        assert self._router is not None
        timeout_ms = max(0, int((deadline - time.monotonic()) * 1000))
        if not self._router.poll(timeout_ms, zmq.POLLIN):
            return None
        frames = self._router.recv_multipart()
        identity = frames[0]
        try:
            env = decode(frames[-1])
        except ProtocolError:
            return None
        if env.type == topics.CONTROL_REQUEST and env.body.get("command") == "worker.hello":
            name = identity.decode(errors="replace").removeprefix("worker:")
            self.hellos[name] = int(env.body.get("args", {}).get("pid", 0))
            reply = reply_envelope(env, True, {"hello": name}, src="supervisor")
            with suppress(zmq.ZMQError):
                self._router.send_multipart([identity, b"", encode(reply)])
        return env


class WorkerProcess:
    """One worker started as the supervisor starts it; output captured to files for messages."""

    def __init__(
        self,
        harness: BusHarness,
        name: str,
        target: str,
        *,
        args: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.harness = harness
        self.name = name
        self.target = target
        self.args = dict(args or {})
        self.extra_env = dict(env or {})
        self.log_dir = Path(log_dir or harness.runtime_dir)
        self.process: subprocess.Popen[bytes] | None = None
        self._out_path = self.log_dir / f"{name}-{id(self)}.out"

    @property
    def pid(self) -> int:
        """The worker's pid."""
        assert self.process is not None
        return self.process.pid

    def start(self) -> WorkerProcess:
        """``python -m wats.workers --name NAME --target TARGET`` with the launch environment."""
        environ = {
            **os.environ,
            "WATS_RUNTIME_DIR": str(self.harness.runtime_dir),
            "WATS_RUNTIME_CONFIG": str(self.harness.runtime_dir / "config.json"),
            "WATS_WORKER_ARGS": json.dumps(self.args),
            "WATS_INSTANCE": "test",
            "WATS_SUPERVISOR_PID": str(os.getpid()),
            **self.extra_env,
        }
        with open(self._out_path, "wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "wats.workers",
                    "--name",
                    self.name,
                    "--target",
                    self.target,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=environ,
            )
        return self

    def output(self) -> str:
        """Everything the worker wrote to stdout/stderr so far."""
        try:
            return self._out_path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self.process is not None and self.process.poll() is None

    def wait_heartbeat(
        self,
        predicate: Callable[[Envelope], bool] = lambda e: True,
        *,
        since: int = 0,
        timeout: float = 15.0,
    ) -> Envelope:
        """The first heartbeat of this worker (from ``since``) that matches."""

        def ours(env: Envelope) -> bool:
            return env.body.get("worker") == self.name and predicate(env)

        return self.harness.wait_for(
            topics.WORKER_HEARTBEAT, ours, src=self.name, since=since, timeout=timeout
        )

    def wait_ready(self, timeout: float = 15.0) -> Envelope:
        """Wait for a heartbeat with ``ready`` true (fails with the worker's output)."""
        try:
            return self.wait_heartbeat(lambda e: bool(e.body.get("ready")), timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker output ---\n{self.output()}") from None

    def wait_exit(self, timeout: float = 10.0) -> int:
        """The exit code once the process ends (fails if it does not end in time)."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.name!r} still running after {timeout}s\n{self.output()}"
            ) from None

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait for the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        """SIGKILL if still running (cleanup)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
