"""How a server instance is configured (from CLI flags or by the test harness)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from wats.server.context import DEFAULT_MAX_BODY_MB, DEFAULT_SERVER_VERSION
from wats.server.faults import FaultSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


@dataclass
class ServerSettings:
    """Everything needed to start a server; ``tokens`` empty means "use <data>/credentials.json".

    ``repr`` hides the tokens (they are secrets).
    """

    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    tokens: list[str] = field(default_factory=list, repr=False)
    reference_file: Path | None = None
    faults: FaultSettings = field(default_factory=FaultSettings)
    server_version: str = DEFAULT_SERVER_VERSION
    max_body_mb: float = DEFAULT_MAX_BODY_MB


def default_data_dir() -> Path:
    """Where the server keeps data when ``--data`` is not given.

    ``$WATS_SERVER_DATA`` if set; otherwise the per-user data folder (``%LOCALAPPDATA%`` on
    Windows, ``$XDG_DATA_HOME`` or ``~/.local/share`` elsewhere) + ``wats-supervisor/server``.
    """
    override = os.environ.get("WATS_SERVER_DATA")
    if override:
        return Path(override)
    base = os.environ.get("LOCALAPPDATA") or os.environ.get("XDG_DATA_HOME")
    root = Path(base) if base else Path.home() / ".local" / "share"
    return root / "wats-supervisor" / "server"
