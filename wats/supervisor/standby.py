"""``python -m wats.supervisor.standby --name NAME --target module:Class``: a warm spare worker.

A fresh interpreter needs about half a second to import pydantic, zmq, structlog and the worker
before its first heartbeat. For a worker that has just crashed (and so may well crash again) the
supervisor keeps one spare that has already paid that cost and waits on stdin; on the next exit
it writes one line and the spare becomes the worker at once. It is still a fresh interpreter
started by the supervisor (never a fork of a process holding a ZeroMQ context), with the same
environment and command-line contract as ``python -m wats.workers``.

End of input without the go line (the supervisor dropped the spare, or died) exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    """Import everything, wait for the go line, then run the worker as ``wats.workers`` would."""
    parser = argparse.ArgumentParser(prog="python -m wats.supervisor.standby")
    parser.add_argument("--name", required=True)
    parser.add_argument("--target", required=True)
    ns = parser.parse_args(argv)

    from wats.platform import set_parent_death_signal

    set_parent_death_signal(signal.SIGTERM)
    from wats.workers import __main__ as worker_main

    # Import the worker's own module too; a failure is reported by the real start below.
    with contextlib.suppress(Exception):
        worker_main.load_target(ns.target)
    line = sys.stdin.buffer.readline()
    if line.strip() != b"go":
        return 0
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return int(worker_main.main(["--name", ns.name, "--target", ns.target]))


if __name__ == "__main__":
    sys.exit(main())
