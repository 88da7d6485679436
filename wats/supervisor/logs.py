"""Supervisor logging: one JSON-lines file per instance, pretty console output in the foreground.

Worker stdout/stderr lines are read by one thread per pipe and logged with ``worker`` and
``stream`` fields, so nothing a worker prints is lost, and it lands in the same file, in order.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import MutableMapping
from pathlib import Path
from typing import IO, Any, TextIO

import structlog

__all__ = ["TeeLogger", "capture_stream", "configure_logging"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


class TeeLogger:
    """Writes each event as a JSON line to the log file and, if given, pretty to the console.

    One lock for both outputs: the loop thread and the output-capture threads log concurrently.
    """

    def __init__(self, file: TextIO | None, console: TextIO | None) -> None:
        self._file = file
        self._console = console
        self._lock = threading.Lock()
        self._pretty = structlog.dev.ConsoleRenderer(colors=bool(console and console.isatty()))

    def msg(self, event_dict: MutableMapping[str, Any]) -> None:
        """Write one event to every configured output."""
        with self._lock:
            if self._file is not None:
                self._file.write(json.dumps(dict(event_dict), default=str) + "\n")
                self._file.flush()
            if self._console is not None and _for_console(event_dict):
                self._console.write(self._pretty(None, "", dict(event_dict)) + "\n")
                self._console.flush()

    log = debug = info = warn = warning = error = err = critical = exception = fatal = msg


def _for_console(event_dict: MutableMapping[str, Any]) -> bool:
    """The console shows the supervisor's own events, and a worker's only from warning up.

    Why: a person at the terminal of a foreground ``start`` wants one line per worker that
    starts, exits or fails, not each worker's own chatter too ("worker started", "worker
    stopping", ...); the log file keeps every line of every worker.
    """
    if "stream" not in event_dict:  # not relayed from a worker's output
        return True
    return _LEVELS.get(str(event_dict.get("level", "info")).lower(), 20) >= _LEVELS["warning"]


def _hand_to_tee(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (event_dict,), {}


def configure_logging(
    level: str, file: Path | None, console: TextIO | None = sys.stderr
) -> TextIO | None:
    """Route structlog to the instance's JSON-lines file and the console; return the open file."""
    handle: TextIO | None = None
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(file, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    tee = TeeLogger(handle, console)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _hand_to_tee,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level.lower(), 20)),
        logger_factory=lambda *_: tee,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING)
    return handle


def _relay(log: Any, line: str) -> None:
    """Log one line of worker output.

    Workers log structlog JSON lines to stderr; those are re-emitted as the same event with the
    same fields (keeping the worker's level and timestamp), so the instance log stays one stream
    of structured events rather than JSON quoted inside JSON. Anything else (a print, a
    traceback line) is logged verbatim.
    """
    try:
        record = json.loads(line) if line.startswith("{") else None
    except ValueError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        log.info(line)
        return
    event = record.pop("event")
    level = str(record.pop("level", "info")).lower()
    record.pop("worker", None)  # already bound
    if "timestamp" in record:
        record["worker_time"] = record.pop("timestamp")
    method = getattr(log, level if level in _LEVELS else "info")
    method(event, **record)


def capture_stream(worker: str, pid: int, stream: str, pipe: IO[bytes]) -> threading.Thread:
    """Start a daemon thread logging each line of a worker's pipe until it closes."""

    def pump() -> None:
        log = structlog.get_logger("wats.supervisor").bind(worker=worker, pid=pid, stream=stream)
        with pipe:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if line:
                    _relay(log, line)

    thread = threading.Thread(target=pump, name=f"out-{worker}-{stream}", daemon=True)
    thread.start()
    return thread
