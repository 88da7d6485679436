"""Checks made before any worker is spawned: say exactly why an instance cannot start.

Why before: a worker that cannot start (its port is taken, its folder is a mistyped network
path) would otherwise crash-loop with tracebacks while the rest of the instance runs half
working. What can be known from here is checked here and reported as one line per problem,
naming the setting to change; what only a worker can find out is reported by the worker as a
start failure (``wats.workers.base.StartError``) and shown in ``status``.

Two groups: :func:`config_problems` depends on nothing that runs (``config validate`` uses it
too); :func:`runtime_problems` looks at what is running on this machine (the instance lock,
the embedded server's port).
"""

from __future__ import annotations

import contextlib
import errno
import socket
from dataclasses import dataclass
from pathlib import Path

from wats.config.folders import converter_folders
from wats.config.load import converter_field
from wats.config.models import ClientConfig
from wats.config.paths import InstancePaths
from wats.platform import InstanceLock

__all__ = [
    "Problem",
    "config_problems",
    "create_watch_folders",
    "exit_code",
    "port_holder",
    "port_in_use",
    "runtime_problems",
    "start_problems",
]


@dataclass(frozen=True)
class Problem:
    """One reason the instance cannot start: ``key`` is the setting (or thing) to look at."""

    key: str
    message: str
    exit_code: int = 2  # 2: a setting must change; 1: something else must happen first

    def line(self) -> str:
        """The ``error: ...`` line the CLI prints."""
        return f"error: {self.key}: {self.message}"


def config_problems(cfg: ClientConfig) -> list[Problem]:
    """Problems visible from the configuration and the file system alone.

    A watch folder that does not exist is a problem unless its converter sets
    ``create_watch_folder = true``: a mistyped network path must not silently become an empty
    local folder that no station ever writes to.
    """
    problems = []
    for index, conv in enumerate(cfg.converters):
        if not conv.enabled:
            continue
        watch = converter_folders(cfg, conv).watch
        key = converter_field(index, conv.name, ["watch_folder"])
        if watch.is_dir():
            continue
        if watch.exists():
            problems.append(Problem(key, f"{watch} is not a folder"))
        elif not conv.create_watch_folder:
            problems.append(
                Problem(
                    key,
                    f"{watch} does not exist; check the path (a network share must be "
                    "mounted), create the folder, or set create_watch_folder = true in this "
                    "[[converters]] table to have it created",
                )
            )
    return problems


def create_watch_folders(cfg: ClientConfig) -> list[Problem]:
    """Create the missing watch folders of converters that ask for it; problems if that fails."""
    problems = []
    for index, conv in enumerate(cfg.converters):
        if not (conv.enabled and conv.create_watch_folder):
            continue
        watch = converter_folders(cfg, conv).watch
        try:
            watch.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problems.append(
                Problem(
                    converter_field(index, conv.name, ["watch_folder"]),
                    f"cannot create {watch}: {exc.strerror or exc}",
                )
            )
    return problems


def runtime_problems(cfg: ClientConfig, paths: InstancePaths) -> list[Problem]:
    """Problems that depend on what runs on this machine now (checked by ``start`` only).

    The instance check comes first: when this very instance runs, its own server holds the
    port, and "already running" is the answer, not "port in use".
    """
    holder = _lock_holder(paths.lock_file)
    if holder is not None:
        return [
            Problem(
                "instance",
                f"instance {cfg.instance.name!r} is already running (supervisor pid {holder}); "
                "stop it with 'wats-supervisor stop' (with the same --config/--instance), or "
                "start another one with --instance NAME",
                exit_code=1,
            )
        ]
    problems = []
    if cfg.server.uses_embedded and cfg.enabled_workers().get("server") is not None:
        embedded = cfg.server.embedded
        if embedded.port and port_in_use(embedded.host, embedded.port):
            problems.append(
                Problem(
                    "server.embedded.port",
                    f"port {embedded.port} on {embedded.host} is in use "
                    f"({port_holder(embedded.port)}); set [server.embedded] port to a free "
                    "port (and use that URL), or stop what holds it",
                )
            )
    return problems


def start_problems(cfg: ClientConfig, paths: InstancePaths) -> list[Problem]:
    """Everything ``start`` checks, in order; creates the watch folders that are asked for.

    An instance already running is the only answer when it is the case (its own workers hold
    its port and folders); otherwise every problem is listed at once, so one run of ``start``
    shows all there is to fix.
    """
    running = runtime_problems(cfg, paths)
    if any(p.key == "instance" for p in running):
        return running
    problems = config_problems(cfg)
    if not problems:
        problems = create_watch_folders(cfg)
    return problems + running


def exit_code(problems: list[Problem]) -> int:
    """The exit code for ``problems``: 2 when a setting must change, else the first's."""
    return 2 if any(p.exit_code == 2 for p in problems) else problems[0].exit_code


def _lock_holder(lock_file: Path) -> int | None:
    if not lock_file.exists():
        return None
    try:
        return InstanceLock.holder(lock_file)
    except OSError:
        return None


def port_in_use(host: str, port: int) -> bool:
    """True when a listening socket on ``host:port`` cannot be opened as the server opens it.

    Binds with ``SO_REUSEADDR`` like ``wats.server.serving.bind_socket``, so a port held only
    by connections in TIME_WAIT counts as free, exactly as it is for the server.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1)
    except OSError as exc:
        return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    finally:
        sock.close()
    return False


def port_holder(port: int) -> str:
    """Who listens on TCP ``port``, best effort: "held by pid N (command)", else "held by
    another process" (other users' sockets are not visible without privileges)."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return "held by another process"
    for conn in connections:
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
            continue
        if conn.pid is None:
            break
        command = ""
        with contextlib.suppress(psutil.Error):
            command = " ".join(" ".join(psutil.Process(conn.pid).cmdline()).split())[:120]
        return f"held by pid {conn.pid}" + (f": {command}" if command else "")
    return "held by another process"
