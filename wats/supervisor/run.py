"""Bring one supervisor instance up and down: lock, logging, leftovers, bus, arbiter.

The order matters: the instance lock comes first (a second supervisor must not touch anything of
the first one's), then leftovers of a SIGKILLed predecessor are killed (by pid and create time),
then the bus is bound and workers are started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import structlog
import zmq

from wats.config.load import dump_runtime_config
from wats.config.models import ClientConfig
from wats.config.paths import InstancePaths
from wats.platform import InstanceLock, make_child_subreaper
from wats.supervisor.arbiter import Arbiter, ArbiterSettings
from wats.supervisor.broker import RemoteListener, bind_bus
from wats.supervisor.logs import configure_logging
from wats.supervisor.policy import PolicySettings
from wats.supervisor.spec import specs_from_config
from wats.supervisor.state import SupervisorState, kill_leftovers, read_state, write_state

__all__ = ["run_supervisor", "worker_environment"]


def worker_environment(
    cfg: ClientConfig, paths: InstancePaths, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment every worker starts with (the launch contract with ``wats.workers``)."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "WATS_RUNTIME_DIR": str(paths.runtime_dir),
            "WATS_RUNTIME_CONFIG": str(paths.runtime_config_file),
            "WATS_INSTANCE": cfg.instance.name,
            "WATS_SUPERVISOR_PID": str(os.getpid()),
            # Worker output is captured line by line; unbuffered so lines arrive as written.
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _remove_runtime_files(paths: InstancePaths) -> None:
    """What the instance put in its runtime folder (the bus's sockets go with the bus): the
    endpoints clients read, the config dump workers read, start-failure notes of workers."""
    leftovers = [paths.runtime_dir / "endpoints.json", paths.runtime_config_file]
    leftovers += paths.runtime_dir.glob("*.start-failure.json")
    for path in leftovers:
        with contextlib.suppress(OSError):
            path.unlink()


def run_supervisor(
    cfg: ClientConfig, config_path: Path | None, console: TextIO | None = sys.stderr
) -> None:
    """Run the instance of ``cfg`` in this process until it is shut down.

    Raises ``wats.platform.LockHeld`` (naming the running supervisor's pid) when the instance is
    already running; nothing has been touched then.
    """
    interrupted = threading.Event()
    with _deferred_signals(lambda *_: interrupted.set()):
        _run(cfg, config_path, console, interrupted)


@contextlib.contextmanager
def _deferred_signals(handler: Callable[..., None]) -> Iterator[None]:
    """SIGINT/SIGTERM only set a flag until the arbiter installs its own handlers.

    Why: a Ctrl-C raising ``KeyboardInterrupt`` in the middle of binding the bus could leave
    a socket open, and ``ctx.term()`` then waits for it forever. The arbiter's handlers
    replace these once it runs; the previous ones are back once the supervisor is down.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run(
    cfg: ClientConfig, config_path: Path | None, console: TextIO | None, interrupted: Any
) -> None:
    paths = InstancePaths.for_config(cfg).ensure()
    lock = InstanceLock(paths.lock_file)
    lock.acquire()
    log_file: TextIO | None = None
    ctx: zmq.Context[Any] | None = None
    try:
        log_file = configure_logging(cfg.logging.level, paths.log_file, console)
        log = structlog.get_logger("wats.supervisor")
        if not make_child_subreaper():
            log.info("child subreaper unavailable; setsid'd descendants are tracked by pid")
        killed = kill_leftovers(read_state(paths.state_file), log.warning)
        if killed:
            log.warning("killed leftover processes of an earlier run", count=killed)
        state = SupervisorState.for_this_process(
            cfg.instance.name, str(config_path) if config_path else None
        )
        write_state(paths.state_file, state)
        dump_runtime_config(cfg, paths.runtime_config_file)
        ctx = zmq.Context()
        remote = RemoteListener.from_config(cfg.bus, paths.data_dir)
        bus = bind_bus(ctx, paths.runtime_dir, remote)
        try:
            arbiter = Arbiter(
                ctx,
                bus,
                specs_from_config(cfg),
                ArbiterSettings.from_config(cfg.supervisor),
                PolicySettings.from_config(cfg.supervisor),
                worker_environment(cfg, paths),
                state,
                paths.state_file,
            )
            if interrupted.is_set():
                log.info("interrupted before any worker was started")
            else:
                arbiter.run()
        finally:
            bus.close()
            _remove_runtime_files(paths)
    finally:
        if ctx is not None:
            ctx.term()
        lock.release()
        if log_file is not None:
            log_file.close()
