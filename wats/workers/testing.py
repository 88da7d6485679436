"""Workers that misbehave on purpose, for tests and benchmarks of the supervisor.

Each one is a real worker (same base, same bus, same launch contract) with one scripted
behaviour, chosen through the worker spec's ``args``:

- :class:`IdleWorker` — only heartbeats (progress rises once per heartbeat interval).
- :class:`CrashingWorker` — exits abruptly with ``exit_code`` after ``after_seconds``.
- :class:`HangingWorker` — its loop blocks for good after ``after_seconds``: alive but silent.
- :class:`FamilyWorker` — spawns a child and a setsid'd grandchild that sleep forever and
  reports their pids; it deliberately does not clean them up, so only the supervisor's
  tree kill can.
- :class:`EchoWorker` — answers ``echo`` with the request's args, after ``delay`` seconds.
- :class:`StartFailingWorker` — cannot start: raises ``StartError`` in setup with
  ``args.message`` (a start failure the supervisor stops retrying after a few).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from wats.protocol.messages import WorkerFailure
from wats.workers.base import ControlError, Later, StartError, Worker, handles

__all__ = [
    "CrashingWorker",
    "EchoWorker",
    "FamilyWorker",
    "HangingWorker",
    "IdleWorker",
    "StartFailingWorker",
]


def _float_arg(args: dict[str, Any], key: str, default: float) -> float:
    value = args.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"worker arg {key!r} must be a number, got {value!r}") from None


class IdleWorker(Worker):
    """Does nothing but heartbeat; ready at once. The baseline for footprint and restart timing."""

    def setup(self) -> None:
        """Ready immediately; progress rises with each heartbeat interval."""
        self.ready = True
        self.every(self.heartbeat_interval, self.tick)


class CrashingWorker(Worker):
    """Exits with ``args.exit_code`` (default 1) ``args.after_seconds`` (default 0.5) after start.

    The exit is abrupt (``os._exit``, no cleanup), like a crash. ``after_seconds: 0`` crashes on
    the first loop turn, which makes a crash loop for the flapping breaker.
    """

    def setup(self) -> None:
        """Schedule the crash."""
        self.ready = True
        code = int(self.args.get("exit_code", 1))
        self.after(_float_arg(self.args, "after_seconds", 0.5), lambda: self._crash(code))

    def _crash(self, code: int) -> None:
        self.log.warning("crashing on purpose", exit_code=code)
        sys.stderr.flush()
        os._exit(code)


class HangingWorker(Worker):
    """Stops heartbeating after ``args.after_seconds`` (default 0.5) while staying alive.

    Its loop blocks in a sleep forever; SIGTERM cannot end it (the loop never turns again), so
    the supervisor's stop must escalate to SIGKILL — which is what a real hang needs too.
    """

    def setup(self) -> None:
        """Schedule the hang."""
        self.ready = True
        self.every(self.heartbeat_interval, self.tick)
        self.after(_float_arg(self.args, "after_seconds", 0.5), self._hang)

    def _hang(self) -> None:
        self.log.warning("hanging on purpose")
        while True:
            time.sleep(3600)


_GRANDPARENT_SCRIPT = """
import subprocess, sys, time
grandchild = subprocess.Popen(
    [sys.executable, "-c", "import time\\nwhile True: time.sleep(3600)"],
    start_new_session=True, stdin=subprocess.DEVNULL,
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
print(grandchild.pid, flush=True)
while True:
    time.sleep(3600)
"""


class FamilyWorker(Worker):
    """Spawns a child, which spawns a grandchild in a new session (setsid); both sleep forever.

    Heartbeat ``detail`` carries ``child_pid`` and ``grandchild_pid``. The worker does not stop
    them on exit: they stand for descendants a worker loses track of, which the supervisor must
    still find (psutil, subreaper) and kill.
    """

    child_pid: int | None = None
    grandchild_pid: int | None = None

    def setup(self) -> None:
        """Start the family and learn the grandchild's pid (one line from the child)."""
        child = subprocess.Popen(
            [sys.executable, "-c", _GRANDPARENT_SCRIPT],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        child.stdout.close()
        self.child_pid = child.pid
        self.grandchild_pid = int(line) if line.isdigit() else None
        self.log.info("family started", child=self.child_pid, grandchild=self.grandchild_pid)
        self.ready = True
        self.every(self.heartbeat_interval, self.tick)

    def heartbeat_detail(self) -> dict[str, Any]:
        """The pids a test must find gone after a stop."""
        return {"child_pid": self.child_pid, "grandchild_pid": self.grandchild_pid}


class EchoWorker(Worker):
    """Answers ``echo`` with the request's args, after ``args.delay`` seconds (default 0).

    A request may carry its own ``delay`` (it is echoed back too). The delay is spent in a
    background thread, so a slow answer never stops the heartbeat and concurrent requests are
    answered concurrently. ``echo.fail`` answers with the error ``code``/``reason`` it is given.
    """

    def setup(self) -> None:
        """Ready at once."""
        self.ready = True

    @handles("echo")
    def echo(self, args: dict[str, Any]) -> dict[str, Any] | Later:
        """Reply with ``args`` (after the delay)."""
        delay = _float_arg(args, "delay", _float_arg(self.args, "delay", 0.0))
        self.tick()
        if delay <= 0:
            return args

        def wait_then_echo() -> dict[str, Any]:
            time.sleep(delay)  # the simulated slow work itself, not synchronisation
            return args

        return self.later(wait_then_echo)

    @handles("echo.fail")
    def fail(self, args: dict[str, Any]) -> None:
        """Answer with an error, to test error replies end to end."""
        raise ControlError(
            str(args.get("code", "bad_request")), str(args.get("reason", "asked to"))
        )


class StartFailingWorker(Worker):
    """Fails every start the same way: ``StartError(args.reason, args.message)`` in setup."""

    def setup(self) -> None:
        """Refuse to start."""
        reason = WorkerFailure(str(self.args.get("reason", WorkerFailure.START_FAILED.value)))
        raise StartError(reason, str(self.args.get("message", "cannot start (on purpose)")))
