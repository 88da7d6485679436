"""Where the bus sockets live, and the runtime file that tells clients.

Why a file: the supervisor binds; everyone else connects. With ``ipc://`` the socket paths are
known in advance, but where IPC is unavailable (or the runtime path is too long for a Unix socket)
the supervisor binds ``tcp://127.0.0.1`` on ephemeral ports that nobody can guess. So the binding
side always records the endpoints it actually got in ``<runtime dir>/endpoints.json`` and clients
(workers, CLI) always read that file — one way to find the bus, whatever the transport.

The runtime dir is private (mode 0700) and the file is 0600: on POSIX, file permissions are what
keep other local users off the ``ipc://`` sockets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from wats.fsutil import atomic_write
from wats.protocol.codec import ProtocolError

__all__ = [
    "ENDPOINTS_FILE",
    "MAX_IPC_PATH_BYTES",
    "TCP_PLACEHOLDER",
    "BusAddresses",
    "read_endpoints",
    "read_remote_endpoints",
    "write_endpoints",
]

ENDPOINTS_FILE = "endpoints.json"
TCP_PLACEHOLDER = "tcp://127.0.0.1:*"
"""Bind to an ephemeral loopback port; the real endpoint is read back from the socket."""

MAX_IPC_PATH_BYTES = 100
"""Longest socket path we trust to fit ``sun_path`` (108 bytes on Linux, 104 on macOS and BSD,
both counting the terminating NUL); longer paths fall back to TCP instead of failing to bind."""

_SOCKET_NAMES = {
    "events_in": "events-in.sock",
    "events_out": "events-out.sock",
    "control": "control.sock",
}


@dataclass(frozen=True)
class BusAddresses:
    """The three endpoints of one instance's bus.

    ``events_in``: the XSUB the supervisor binds; publishers connect a PUB here.
    ``events_out``: the XPUB the supervisor binds; subscribers connect a SUB here.
    ``control``: the ROUTER the supervisor binds; clients connect a DEALER here.
    """

    events_in: str
    events_out: str
    control: str

    @classmethod
    def for_runtime_dir(
        cls, path: str | os.PathLike[str], *, ipc: bool | None = None
    ) -> BusAddresses:
        """The addresses to *bind* for the runtime dir ``path``.

        ``ipc://<path>/events-in.sock`` etc. when IPC works here and the paths fit a Unix socket
        address; otherwise ``tcp://127.0.0.1:*`` placeholders, whose real ports the binder records
        with :func:`write_endpoints`. ``ipc`` overrides the platform check (tests use it).
        """
        if ipc is None:
            from wats.platform import ipc_supported  # the platform seam decides, not this module

            ipc = ipc_supported()
        root = os.path.abspath(os.fspath(path))
        sockets = {field: os.path.join(root, name) for field, name in _SOCKET_NAMES.items()}
        fits = all(len(os.fsencode(p)) <= MAX_IPC_PATH_BYTES for p in sockets.values())
        if ipc and fits:
            return cls(**{field: f"ipc://{p}" for field, p in sockets.items()})
        return cls(events_in=TCP_PLACEHOLDER, events_out=TCP_PLACEHOLDER, control=TCP_PLACEHOLDER)

    def is_concrete(self) -> bool:
        """True when every endpoint can be connected to (no ephemeral-port placeholder left)."""
        return all(not a.endswith(":*") for a in (self.events_in, self.events_out, self.control))


def write_endpoints(
    path: str | os.PathLike[str],
    addresses: BusAddresses,
    *,
    extra: Mapping[str, str] | None = None,
) -> Path:
    """Record the bound endpoints in ``<path>/endpoints.json``, atomically, mode 0600.

    Atomic (temp file in the same dir, fsync, rename) so a client never reads half a file; a
    placeholder is refused because a client could not connect to it. Creates the runtime dir with
    mode 0700 if it does not exist. Returns the file's path. ``extra`` adds informational fields
    (the network endpoints of a hub, ``remote_events_out`` / ``remote_control``) that
    :func:`read_endpoints` ignores; see :func:`read_remote_endpoints`.
    """
    if not addresses.is_concrete():
        raise ValueError(f"endpoints still hold a placeholder, record the bound ones: {addresses}")
    runtime = Path(path)
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = runtime / ENDPOINTS_FILE
    record = {"v": 1, **dict(extra or {}), **asdict(addresses)}
    data = json.dumps(record, indent=2).encode() + b"\n"
    atomic_write(target, data, mode=0o600)
    return target


def read_endpoints(path: str | os.PathLike[str]) -> BusAddresses:
    """The endpoints the running supervisor bound, from ``<path>/endpoints.json``.

    Raises ``FileNotFoundError`` when there is no file (no supervisor has started on this runtime
    dir) and :class:`ProtocolError` naming the file when it is not a valid endpoints record.
    """
    target = Path(path) / ENDPOINTS_FILE
    text = target.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"{target}: not JSON ({exc.msg})", kind="malformed") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{target}: expected a JSON object", kind="shape")
    values: dict[str, str] = {}
    for field in _SOCKET_NAMES:
        value = data.get(field)
        if not isinstance(value, str) or not value:
            raise ProtocolError(f"{target}: {field}: missing or not a string", kind="shape")
        values[field] = value
    addresses = BusAddresses(**values)
    if not addresses.is_concrete():
        raise ProtocolError(f"{target}: holds an unbound placeholder endpoint", kind="shape")
    return addresses


def read_remote_endpoints(path: str | os.PathLike[str]) -> dict[str, str]:
    """The network endpoints a hub's supervisor listens on (``events_out``, ``control``), from
    ``<path>/endpoints.json``; empty when it listens locally only or no file is there."""
    try:
        data = json.loads((Path(path) / ENDPOINTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    found = {}
    for field in ("events_out", "control"):
        value = data.get(f"remote_{field}")
        if isinstance(value, str) and value:
            found[field] = value
    return found
