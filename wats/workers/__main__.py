"""``python -m wats.workers --name NAME --target module:Class``: one worker process.

The supervisor starts every worker this way (a fresh interpreter, never a fork of a process that
holds a ZeroMQ context). Logs go to stderr as JSON lines, which the supervisor captures into its
own log. Exit codes: 0 clean stop, 1 the worker failed (traceback logged), 2 bad invocation,
3 the worker could not start (``wats.protocol.start_failure``: the reason is in a file of the
runtime folder, which the supervisor reads to stop retrying a start that fails the same way).

SIGINT is ignored: a Ctrl-C in the terminal of a foreground ``start`` reaches the supervisor,
which stops the workers in order (SIGTERM); a worker must not die of it mid-import with a
``KeyboardInterrupt`` traceback of its own.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

# Start-up time is restart latency. structlog imports rich (for its dev console) if it is
# installed: ~0.1 s that a worker, which only writes JSON lines, never uses. Workers do not use
# rich, so it is hidden from this process before structlog is imported.
if "rich" not in sys.modules:
    sys.modules["rich"] = None  # type: ignore[assignment]

import structlog

from wats.protocol.messages import WorkerFailure
from wats.protocol.start_failure import EXIT_START_FAILED, write_start_failure
from wats.workers.base import StartError, Worker

signal.signal(signal.SIGINT, signal.SIG_IGN)  # see the module docstring

EXIT_FAILED = 1
EXIT_USAGE = 2


def configure_logging(level: str = "info") -> None:
    """JSON lines on stderr; the supervisor adds its own context when it captures them."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,  # reconfigured once the config's level is known
    )


def load_target(target: str) -> type[Worker]:
    """Import ``module:Class`` and check that it is a :class:`Worker` subclass."""
    module_name, sep, class_name = target.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"--target must look like 'package.module:Class', got {target!r}")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, Worker):
        raise ValueError(f"{target!r} is not a Worker subclass")
    return cls


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, build the worker from the environment, run it; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m wats.workers", description=__doc__)
    parser.add_argument("--name", required=True, help="worker name (as in [workers.<name>])")
    parser.add_argument("--target", required=True, help="module:Class of the worker")
    options = parser.parse_args(argv)
    configure_logging()
    log = structlog.get_logger("wats.worker").bind(worker=options.name)
    try:
        cls = load_target(options.target)
    except (ImportError, ValueError) as exc:
        log.error("cannot load worker", target=options.target, error=str(exc))
        return EXIT_USAGE
    worker: Worker | None = None
    try:
        worker = cls.from_environment(options.name)
        configure_logging(worker.config.logging.level)
        return worker.run()
    except StartError as exc:
        # A known condition with a message that says what to do: one line, no traceback.
        log.error("worker cannot start", reason=exc.reason.value, error=exc.message)
        return _start_failed(options.name, exc.reason, exc.message)
    except Exception as exc:
        log.exception("worker failed")  # one JSON line carrying the traceback
        if worker is None or not worker.set_up:
            text = str(exc).strip()
            message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            return _start_failed(options.name, WorkerFailure.START_FAILED, message)
        return EXIT_FAILED


def _start_failed(name: str, reason: WorkerFailure, message: str) -> int:
    """Leave the reason for the supervisor; exit 3 if it could be left, else 1."""
    runtime = os.environ.get("WATS_RUNTIME_DIR", "").strip()
    if not runtime:
        return EXIT_FAILED
    try:
        write_start_failure(Path(runtime), name, reason, message)
    except OSError:
        return EXIT_FAILED
    return EXIT_START_FAILED


if __name__ == "__main__":
    sys.exit(main())
