"""Where an instance keeps its files, per platform (platformdirs), with config overrides.

One instance = one folder tree, so several instances on one machine never share a lock, a log or
a socket. Layout under the instance data dir: ``cache/``, ``logs/``, ``queue/`` (the report queue;
``[queue] folder`` moves it), ``server/`` (embedded server data), ``supervisor.lock``,
``supervisor-state.json``; the runtime dir (sockets, endpoints.json, the effective config handed
to workers) lives apart because it must be short and private.
"""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from wats.config.models import ClientConfig

__all__ = [
    "APP_NAME",
    "CONFIG_FILE_NAME",
    "InstancePaths",
    "default_config_path",
    "instances_root",
]

APP_NAME = "wats-supervisor"
CONFIG_FILE_NAME = "config.toml"
# Unix socket paths are limited to ~104-108 bytes; beyond this the bus falls back to TCP.
_MAX_SOCKET_PATH = 100
_LONGEST_SOCKET_NAME = "events-out.sock"


def default_config_path() -> Path:
    """The per-user config file: ``~/.config/wats-supervisor/config.toml`` on Linux,
    ``%APPDATA%\\wats-supervisor\\config.toml`` on Windows (platformdirs decides)."""
    return (
        Path(platformdirs.user_config_dir(APP_NAME, appauthor=False, roaming=True))
        / CONFIG_FILE_NAME
    )


def instances_root() -> Path:
    """The folder holding every instance's default data dir (``<user data>/instances``)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "instances"


@dataclass(frozen=True)
class InstancePaths:
    """The files and folders of one instance; computing them touches nothing, ``ensure`` creates."""

    instance: str
    data_dir: Path
    cache_dir: Path
    log_dir: Path
    runtime_dir: Path
    state_file: Path
    lock_file: Path
    log_file: Path
    server_data_dir: Path
    runtime_config_file: Path
    queue_dir: Path

    @classmethod
    def for_config(cls, cfg: ClientConfig) -> InstancePaths:
        """Paths for ``cfg``'s instance, honouring ``[paths]``, ``[logging] file`` and
        ``[server.embedded] data_dir`` overrides (relative overrides are resolved by the loader
        against the config file's folder)."""
        name = cfg.instance.name
        if cfg.paths.data_dir:
            data_dir = Path(cfg.paths.data_dir).expanduser()
        else:
            data_dir = instances_root() / name
        if cfg.paths.runtime_dir:
            runtime_dir = Path(cfg.paths.runtime_dir).expanduser()
        else:
            runtime_dir = _default_runtime_dir(name) or data_dir / "run"
        log_dir = data_dir / "logs"
        log_file = (
            Path(cfg.logging.file).expanduser()
            if cfg.logging.file
            else (log_dir / "supervisor.jsonl")
        )
        embedded = cfg.server.embedded.data_dir
        server_data_dir = Path(embedded).expanduser() if embedded else data_dir / "server"
        queue_dir = Path(cfg.queue.folder).expanduser() if cfg.queue.folder else data_dir / "queue"
        return cls(
            instance=name,
            data_dir=data_dir,
            cache_dir=data_dir / "cache",
            log_dir=log_dir,
            runtime_dir=runtime_dir,
            state_file=data_dir / "supervisor-state.json",
            lock_file=data_dir / "supervisor.lock",
            log_file=log_file,
            server_data_dir=server_data_dir,
            runtime_config_file=runtime_dir / "config.json",
            queue_dir=queue_dir,
        )

    def ensure(self) -> InstancePaths:
        """Create the folders (mode 0700) and make sure the runtime dir is private.

        The runtime dir holds the control socket: anyone who can reach it can stop workers, so
        an existing one that another user owns, or that others can enter, is refused.
        """
        for folder in (self.data_dir, self.cache_dir, self.log_dir, self.log_file.parent):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _make_private_dirs(self.runtime_dir)
        if os.name != "nt":
            info = self.runtime_dir.stat()
            if info.st_uid != os.getuid():
                raise PermissionError(
                    f"runtime dir {self.runtime_dir} belongs to uid {info.st_uid}, not to this "
                    "user; set [paths] runtime_dir to a folder of your own"
                )
            if stat.S_IMODE(info.st_mode) != 0o700:
                os.chmod(self.runtime_dir, 0o700)
        return self

    @property
    def ipc_path_fits(self) -> bool:
        """Whether ipc:// socket paths in the runtime dir fit the OS limit."""
        return len(str(self.runtime_dir / _LONGEST_SOCKET_NAME).encode()) <= _MAX_SOCKET_PATH


def _make_private_dirs(path: Path) -> None:
    """``mkdir -p`` where every folder created (not just the last) is 0700.

    Why: ``Path.mkdir(parents=True)`` gives missing parents the umask's mode (usually 0755).
    When the user runtime base (``/tmp/runtime-<uid>`` without ``$XDG_RUNTIME_DIR``) did not
    exist, the supervisor created it 0755 and put its sockets below it, and every later command
    then judged that base open to others (:func:`_usable_base`) and looked for the sockets in
    ``<data_dir>/run`` instead: ``status`` and ``stop`` could not find a running supervisor.
    """
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by another process; its mode is checked by the caller
        if os.name != "nt":
            os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask


def _default_runtime_dir(instance: str) -> Path | None:
    """``<user runtime dir>/wats-supervisor/<instance>`` if that base is usable, else None.

    On Linux the base is ``$XDG_RUNTIME_DIR`` (``/run/user/<uid>``); without it platformdirs
    falls back to ``/tmp/runtime-<uid>``, which is usable only if it is ours and private (or
    does not exist yet and we may create it).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        base = Path(platformdirs.user_runtime_dir())
    if not _usable_base(base):
        return None
    return base / APP_NAME / instance


def _usable_base(base: Path) -> bool:
    if os.name == "nt":
        return True
    try:
        info = base.stat()
    except FileNotFoundError:
        return os.access(base.parent, os.W_OK | os.X_OK)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) & 0o077 == 0
        and os.access(base, os.W_OK | os.X_OK)
    )
