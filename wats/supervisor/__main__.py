"""``python -m wats.supervisor [--config PATH] [--instance NAME] [--quiet]``.

The process ``wats-supervisor start --detach`` launches (and tests start): the supervisor without
the rest of the CLI. Exit codes: 0 after a clean shutdown, 1 when the instance is already running,
2 for a bad configuration (including a bus that cannot be secured as configured, a missing watch
folder or a port that is taken: ``wats.supervisor.preflight``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wats.config.load import ConfigError, load_config
from wats.config.paths import InstancePaths
from wats.converters.check import converter_problems, problem_lines
from wats.platform import LockHeld
from wats.protocol.security import BusSecurityError
from wats.supervisor.preflight import exit_code, start_problems
from wats.supervisor.run import run_supervisor


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the supervisor, map failures to exit codes."""
    parser = argparse.ArgumentParser(prog="python -m wats.supervisor")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--instance", default=None)
    parser.add_argument("--quiet", action="store_true", help="log to the file only")
    ns = parser.parse_args(argv)
    try:
        cfg, path = load_config(ns.config, ns.instance)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = converter_problems(cfg, load_site=False)
    if problems:
        print("\n".join(problem_lines(problems, path)), file=sys.stderr)
        return 2
    refusals = start_problems(cfg, InstancePaths.for_config(cfg))
    if refusals:
        print("\n".join(p.line() for p in refusals), file=sys.stderr)
        return exit_code(refusals)
    try:
        run_supervisor(cfg, path, console=None if ns.quiet else sys.stderr)
    except LockHeld as exc:
        print(
            f"error: instance {cfg.instance.name!r} is already running (pid {exc.pid})",
            file=sys.stderr,
        )
        return 1
    except BusSecurityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _main() -> int:
    try:
        return main()
    except KeyboardInterrupt:  # before the supervisor's own handlers: nothing runs yet
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(_main())
