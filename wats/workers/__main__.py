"""``python -m wats.workers --name NAME --target module:Class``: one worker process.

The supervisor starts every worker this way (a fresh interpreter, never a fork of a process that
holds a ZeroMQ context). Logs go to stderr as JSON lines, which the supervisor captures into its
own log. Exit codes: 0 clean stop, 1 the worker failed (traceback logged), 2 bad invocation.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Start-up time is restart latency. structlog imports rich (for its dev console) if it is
# installed: ~0.1 s that a worker, which only writes JSON lines, never uses. Workers do not use
# rich, so it is hidden from this process before structlog is imported.
if "rich" not in sys.modules:
    sys.modules["rich"] = None  # type: ignore[assignment]

import structlog

from wats.workers.base import Worker

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
    try:
        worker = cls.from_environment(options.name)
        configure_logging(worker.config.logging.level)
        return worker.run()
    except Exception:
        log.exception("worker failed")  # one JSON line carrying the traceback
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
