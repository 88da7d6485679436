"""Who may reach the bus: owner-only IPC locally, CurveZMQ for anything beyond loopback.

Why two mechanisms: local processes of one instance meet on ``ipc://`` sockets in a private
runtime dir (0700, sockets 0600), so the kernel already keeps other users out and no key is
needed. A hub whose monitor runs on another machine must listen on the network, where file
permissions mean nothing; there every listener speaks CurveZMQ (encrypted, and each client proves
it holds a secret key whose public half is in the authorized-keys folder, checked by a ZAP
authenticator). A network listener without a server key is refused rather than opened in clear.

Key files use the ZeroMQ certificate format (``<name>.key`` holds the public key,
``<name>.key_secret`` both halves), so ``zmq.auth.load_certificate`` and other ZeroMQ tools read
them. Secret key files are written 0600 in a 0700 folder, and a secret key file that others can
read is refused. Secret keys never appear in a repr, a log line or an exception message.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import zmq

from wats.fsutil import atomic_write

__all__ = [
    "AUTHORIZED_DIR_NAME",
    "KEY_DIR_NAME",
    "PUBLIC_SUFFIX",
    "SECRET_SUFFIX",
    "SERVER_KEY_NAME",
    "BusSecurityError",
    "CurveClientKeys",
    "CurveServerKeys",
    "KeyFiles",
    "KeyInfo",
    "KeyPaths",
    "authorize_key",
    "ensure_private_dir",
    "generate_keypair",
    "is_loopback_host",
    "list_keys",
    "load_client_keys",
    "load_public_key",
    "load_server_keys",
    "make_private_socket",
    "start_authenticator",
]

KEY_DIR_NAME = "bus-keys"
"""Default key folder, under the instance data dir."""
AUTHORIZED_DIR_NAME = "authorized"
"""Sub-folder of the key folder holding the public keys of clients allowed to connect."""
SERVER_KEY_NAME = "server"
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
ZAP_DOMAIN = "wats-bus"
"""The ZAP domain of the network listeners; the authenticator admits keys for it alone."""

_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_Z85_KEY = re.compile(rb"^[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")

log = structlog.get_logger("wats.protocol.security")


class BusSecurityError(Exception):
    """The bus cannot be secured as configured; the message says which setting or file to fix."""


def is_loopback_host(host: str) -> bool:
    """True when ``host`` names only this machine: ``localhost`` or a loopback IP literal.

    Anything else — a wildcard (``0.0.0.0``, ``::``, ``*``), an interface or host name, a LAN
    address — may be reachable from other machines and therefore needs CurveZMQ.
    """
    value = host.strip().strip("[]")
    if value.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(value).is_loopback
    except ValueError:
        return False


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) or make an existing one private; refuse one of another user.

    Why: the folder is what keeps other local users away from the sockets or keys inside it.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "nt":  # ACLs of the per-user profile folders protect it there
        return path
    info = path.stat()
    if info.st_uid != os.getuid():
        raise BusSecurityError(
            f"{path} belongs to uid {info.st_uid}, not to this user; use a folder of your own"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
        log.warning("folder made private", path=str(path), was=oct(stat.S_IMODE(info.st_mode)))
    return path


def make_private_socket(endpoint: str) -> None:
    """chmod an ``ipc://`` socket file 0600 once bound (defence in depth behind the 0700 dir).

    Connecting to a Unix socket needs write permission on its file, so 0600 admits the owner
    only. Other transports are left alone.
    """
    if endpoint.startswith("ipc://") and os.name != "nt":
        os.chmod(endpoint[len("ipc://") :], 0o600)


# -- key files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPaths:
    """Where one instance keeps its bus keys, defaults applied (see the ``[bus]`` settings)."""

    key_dir: Path
    authorized_dir: Path
    client_key: Path

    @classmethod
    def resolve(
        cls, data_dir: Path, key_dir: str = "", authorized_keys: str = "", client_key: str = ""
    ) -> KeyPaths:
        """Empty settings mean ``<data_dir>/bus-keys``, ``<key_dir>/authorized`` and
        ``<key_dir>/client.key_secret``."""
        keys = Path(key_dir) if key_dir else data_dir / KEY_DIR_NAME
        return cls(
            key_dir=keys,
            authorized_dir=Path(authorized_keys) if authorized_keys else keys / AUTHORIZED_DIR_NAME,
            client_key=Path(client_key) if client_key else keys / f"client{SECRET_SUFFIX}",
        )


@dataclass(frozen=True)
class KeyFiles:
    """A generated key pair: where its two files are, and the public key (Z85, printable)."""

    public_file: Path
    secret_file: Path
    public_key: str


@dataclass(frozen=True)
class KeyInfo:
    """One key file found by :func:`list_keys`; ``has_secret`` is True for a ``.key_secret``."""

    name: str
    path: Path
    public_key: str
    has_secret: bool


def _check_name(name: str) -> str:
    if not _KEY_NAME.match(name):
        raise BusSecurityError(
            f"key name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _key_text(public: bytes, secret: bytes | None, name: str) -> bytes:
    kind = "secret" if secret else "public"
    lines = [
        f"#   ZeroMQ CURVE {kind} certificate for the wats-supervisor bus ({name})",
        f"#   made {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
        "#   Keep a .key_secret file private (mode 0600); share only the .key file.",
        "metadata",
        f"    name = {name}",
        "curve",
        f'    public-key = "{public.decode("ascii")}"',
    ]
    if secret:
        lines.append(f'    secret-key = "{secret.decode("ascii")}"')
    return ("\n".join(lines) + "\n").encode("ascii")


def generate_keypair(directory: Path, name: str, *, overwrite: bool = False) -> KeyFiles:
    """Make a CurveZMQ key pair as ``<directory>/<name>.key`` and ``<name>.key_secret``.

    The folder is made private (0700), the secret file is written 0600 (atomically), the public
    file 0644 (it is meant to be copied). An existing pair is kept unless ``overwrite``: replacing
    a server key locks out every client that trusted it.
    """
    _check_name(name)
    if not zmq.has("curve"):
        raise BusSecurityError("this libzmq was built without CURVE support; install pyzmq wheels")
    ensure_private_dir(directory)
    public_file = directory / f"{name}{PUBLIC_SUFFIX}"
    secret_file = directory / f"{name}{SECRET_SUFFIX}"
    if not overwrite and (public_file.exists() or secret_file.exists()):
        raise BusSecurityError(
            f"key {name!r} already exists in {directory}; choose another --name, or remove "
            f"{public_file.name} and {secret_file.name} first (clients trusting it must be updated)"
        )
    public, secret = zmq.curve_keypair()
    atomic_write(secret_file, _key_text(public, secret, name), mode=0o600)
    atomic_write(public_file, _key_text(public, None, name), mode=0o644)
    return KeyFiles(public_file, secret_file, public.decode("ascii"))


def _read_key_file(path: Path) -> tuple[bytes, bytes | None]:
    """(public, secret or None) from a ZeroMQ certificate file; errors never quote the keys."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BusSecurityError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise BusSecurityError(f"cannot read key file {path}: {exc.strerror}") from None
    public: bytes | None = None
    secret: bytes | None = None
    for raw in data.splitlines():
        line = raw.strip()
        if line.startswith(b"#") or b"=" not in line:
            continue
        key, value = (part.strip() for part in line.split(b"=", 1))
        value = value.strip(b"'\"")
        if key == b"public-key":
            public = value
        elif key == b"secret-key":
            secret = value
    if public is None or not _Z85_KEY.match(public):
        raise BusSecurityError(f"{path} holds no valid CurveZMQ public key (40 Z85 characters)")
    if secret is not None and not _Z85_KEY.match(secret):
        raise BusSecurityError(f"{path} holds a secret key that is not 40 Z85 characters")
    return public, secret


def _check_secret_file_private(path: Path) -> None:
    if os.name == "nt":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise BusSecurityError(
            f"secret key file {path} is readable by others (mode {mode:o}); "
            f"run `chmod 600 {path}` and keep it private"
        )


def load_public_key(path: Path) -> bytes:
    """The public key in ``path`` (a ``.key`` or ``.key_secret`` file), as 40 Z85 bytes."""
    return _read_key_file(path)[0]


def _load_pair(path: Path, what: str, setting: str) -> tuple[bytes, bytes]:
    public, secret = _read_key_file(path)
    if secret is None:
        raise BusSecurityError(
            f"{setting} = {str(path)!r} holds only a public key; point it at the {what}'s "
            f"{SECRET_SUFFIX} file"
        )
    _check_secret_file_private(path)
    return public, secret


@dataclass(frozen=True)
class CurveServerKeys:
    """The server's key pair, applied to every network listener; the secret never prints."""

    public: bytes
    secret: bytes = field(repr=False)

    def apply(self, socket: zmq.Socket[Any]) -> None:
        """Make the *next* bind of ``socket`` a CurveZMQ server (options apply to later binds)."""
        socket.setsockopt(zmq.CURVE_SECRETKEY, self.secret)
        socket.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        socket.setsockopt(zmq.CURVE_SERVER, 1)
        socket.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode())


@dataclass(frozen=True)
class CurveClientKeys:
    """What a remote client needs: the server's public key and its own pair (secret hidden)."""

    server_public: bytes
    public: bytes
    secret: bytes = field(repr=False)

    def apply(self, socket: zmq.Socket[Any]) -> None:
        """Make the next connect of ``socket`` a CurveZMQ client of that server."""
        socket.setsockopt(zmq.CURVE_SERVERKEY, self.server_public)
        socket.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        socket.setsockopt(zmq.CURVE_SECRETKEY, self.secret)


def load_server_keys(path: Path, setting: str = "[bus] server_key") -> CurveServerKeys:
    """The server key pair from its ``.key_secret`` file; errors name ``setting`` and the file."""
    public, secret = _load_pair(path, "server", setting)
    return CurveServerKeys(public, secret)


def load_client_keys(
    server_public_file: Path,
    client_secret_file: Path,
    settings: tuple[str, str] = ("[bus] hub_public_key", "[bus] client_key"),
) -> CurveClientKeys:
    """A client's keys: the hub's public key file and this client's ``.key_secret`` file."""
    try:
        server_public = load_public_key(server_public_file)
    except BusSecurityError as exc:
        raise BusSecurityError(f"{settings[0]}: {exc}") from None
    public, secret = _load_pair(client_secret_file, "client", settings[1])
    return CurveClientKeys(server_public, public, secret)


def authorize_key(public_key_file: Path, authorized_dir: Path, name: str | None = None) -> Path:
    """Admit a client: write its public key (only) as ``<authorized_dir>/<name>.key``.

    ``name`` defaults to the file's stem. Only the public half is copied, so authorizing from a
    ``.key_secret`` by mistake does not spread the secret. A running supervisor admits it at the
    client's next connection (:class:`AuthorizedKeys`).
    """
    public = load_public_key(public_key_file)
    stem = public_key_file.name.split(".", 1)[0] if name is None else name
    _check_name(stem)
    ensure_private_dir(authorized_dir)
    target = authorized_dir / f"{stem}{PUBLIC_SUFFIX}"
    if target.exists() and load_public_key(target) != public:
        raise BusSecurityError(
            f"{target} already authorizes a different key; pick another name or remove it first"
        )
    atomic_write(target, _key_text(public, None, stem), mode=0o644)
    return target


def revoke_key(name: str, authorized_dir: Path) -> Path:
    """Stop admitting a client: remove ``<authorized_dir>/<name>.key``; returns the path removed.

    A running supervisor refuses the key from the client's next connection on (an open
    connection is not cut; see :class:`AuthorizedKeys`).
    """
    _check_name(name)
    target = authorized_dir / f"{name}{PUBLIC_SUFFIX}"
    if not target.is_file():
        known = ", ".join(k.name for k in list_keys(authorized_dir) if not k.has_secret)
        raise BusSecurityError(
            f"no authorized key named {name!r} in {authorized_dir} (authorized: {known or 'none'})"
        )
    target.unlink()
    return target


def list_keys(directory: Path) -> list[KeyInfo]:
    """Every key file in ``directory`` (not recursive), sorted by name; unreadable ones skipped."""
    if not directory.is_dir():
        return []
    found: list[KeyInfo] = []
    for path in sorted(directory.iterdir()):
        if path.suffix not in (PUBLIC_SUFFIX, SECRET_SUFFIX) or not path.is_file():
            continue
        try:
            public, secret = _read_key_file(path)
        except BusSecurityError:
            continue
        name = path.name[: -len(path.suffix)]
        found.append(KeyInfo(name, path, public.decode("ascii"), secret is not None))
    return found


_REFUSAL_LOG_SECONDS = 60.0


class AuthorizedKeys:
    """The client keys the ZAP authenticator admits: the public keys in ``authorized_dir``,
    read again whenever the folder changes.

    Why not pyzmq's ``configure_curve(location=...)``: that reads the folder once, so a key
    added with ``wats-supervisor keys authorize`` (or removed to revoke a monitor) only took
    effect after a restart of the hub. Here every CURVE handshake compares the folder's listing
    (names, sizes, modification times) with the one last read, which costs a directory scan per
    connection attempt and no timer. A connection already made with a key that is then removed
    stays connected until it reconnects (ZAP is asked at the handshake only).
    """

    def __init__(self, authorized_dir: Path) -> None:
        self.authorized_dir = authorized_dir
        self._lock = threading.Lock()
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._keys: dict[bytes, str] = {}
        self._refusals: dict[bytes, float] = {}

    def names(self) -> list[str]:
        """The names of the keys currently admitted (after reading the folder if it changed)."""
        with self._lock:
            self._refresh()
            return sorted(self._keys.values())

    def callback(self, domain: str, z85_public: bytes) -> bool:
        """pyzmq's credentials-provider hook: whether this client key is admitted now."""
        with self._lock:
            self._refresh()
            name = self._keys.get(bytes(z85_public))
        if name is None:
            # A refused client keeps reconnecting: say so once a minute per key, not each time.
            key = bytes(z85_public)
            now = time.monotonic()
            if now - self._refusals.get(key, -_REFUSAL_LOG_SECONDS) >= _REFUSAL_LOG_SECONDS:
                self._refusals[key] = now
                log.warning(
                    "bus client refused: key not authorized",
                    key_start=key[:8].decode("ascii", "replace"),
                    hint="wats-supervisor keys authorize CLIENT.key",
                )
            return False
        log.info("bus client admitted", key=name)
        return True

    def _refresh(self) -> None:
        signature = self._listing()
        if signature == self._signature:
            return
        keys = {
            k.public_key.encode("ascii"): k.name
            for k in list_keys(self.authorized_dir)
            if not k.has_secret
        }
        if self._signature is not None:
            before, after = set(self._keys.values()), set(keys.values())
            log.info(
                "authorized bus keys reloaded",
                keys=len(keys),
                added=sorted(after - before),
                removed=sorted(before - after),
            )
        self._keys, self._signature = keys, signature

    def _listing(self) -> tuple[tuple[str, int, int], ...]:
        try:
            entries = sorted(os.scandir(self.authorized_dir), key=lambda e: e.name)
        except OSError:
            return ()
        found = []
        for entry in entries:
            try:
                info = entry.stat()
            except OSError:
                continue
            found.append((entry.name, info.st_mtime_ns, info.st_size))
        return tuple(found)


def start_authenticator(ctx: zmq.Context[Any], authorized_dir: Path) -> Any:
    """Start a ZAP authenticator on ``ctx`` admitting only the client keys in ``authorized_dir``.

    Returns the running ``zmq.auth.thread.ThreadAuthenticator`` (call ``stop()`` before the
    context terminates). Connections without CURVE on ipc/loopback endpoints carry no ZAP domain
    and are not affected. The folder is read again whenever it changes (:class:`AuthorizedKeys`),
    so keys can be authorized and revoked while the hub runs.
    """
    from zmq.auth.thread import ThreadAuthenticator

    ensure_private_dir(authorized_dir)
    provider = AuthorizedKeys(authorized_dir)
    names = provider.names()
    if not names:
        log.warning(
            "no authorized client keys yet: remote clients are refused until one is added",
            authorized_keys=str(authorized_dir),
            hint="wats-supervisor keys authorize CLIENT.key",
        )
    auth = ThreadAuthenticator(ctx)
    auth.start()
    # Our listeners carry the ZAP domain ZAP_DOMAIN, and pyzmq treats "*" only as the default for
    # an *empty* domain, so the provider is registered for our domain by name.
    auth.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=provider)
    log.info("bus authenticator started", authorized_keys=len(names))
    return auth
