"""The connection record of a configured instance: login, logout, proxy, health, token lookup.

This is the API the CLI and the workers use; it finds the instance's credential folder from the
config (``<instance data>/credentials``, see ``wats.credentials.store``) and keeps every change
a locked read-modify-write of the record.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from wats.api.auth import Secret
from wats.api.proxy import ProxySettings
from wats.config.models import ClientConfig
from wats.config.paths import InstancePaths
from wats.credentials.record import (
    ConnectionConfig,
    ConnectionState,
    HealthCheckSettings,
    utc_now,
)
from wats.credentials.store import CREDENTIALS_DIR_NAME, ConnectionStore

__all__ = [
    "LoginError",
    "clear_proxy",
    "connection_store",
    "credentials_dir",
    "load_connection",
    "login",
    "logout",
    "record_health",
    "same_server",
    "save_connection",
    "set_proxy",
    "stored_proxy",
    "stored_token",
    "token_username",
    "verify_token",
]


class LoginError(RuntimeError):
    """A login the server (or the network) refused; the message is ready for a user and holds
    no secret."""


def credentials_dir(config: ClientConfig) -> Path:
    """``<instance data>/credentials``: where this instance keeps its connection record."""
    return InstancePaths.for_config(config).data_dir / CREDENTIALS_DIR_NAME


def connection_store(
    config: ClientConfig, *, machine_id: Callable[[], str] | None = None
) -> ConnectionStore:
    """The credential store of ``config``'s instance."""
    return ConnectionStore(credentials_dir(config), machine_id=machine_id)


def load_connection(config: ClientConfig) -> ConnectionConfig | None:
    """The instance's connection record (None when there is none)."""
    return connection_store(config).load()


def save_connection(config: ClientConfig, record: ConnectionConfig) -> None:
    """Replace the instance's connection record (under the lock, atomically, mode 0600)."""
    connection_store(config).update(lambda _current: record)


def same_server(a: str, b: str) -> bool:
    """Whether two base URLs name the same server (case of scheme/host, trailing ``/`` and
    ``/api`` ignored) — a token stored for one must never be sent to another."""
    return _normalised(a) == _normalised(b)


def stored_token(config: ClientConfig, url: str | None = None) -> Secret | None:
    """The stored API token, decrypted; None when nobody is logged in, or when ``url`` is given
    and the login was for another server. ``CredentialError`` when it cannot be decrypted."""
    store = connection_store(config)
    record = store.load()
    if record is None or record.token is None:
        return None
    if url is not None and not same_server(record.server_url, url):
        return None
    return store.decrypt(record.token, "API token")


def stored_proxy(config: ClientConfig) -> ProxySettings | None:
    """The stored proxy settings, password decrypted (None when none are stored)."""
    return connection_store(config).proxy()


def token_username(token: str) -> str | None:
    """The user name inside a WATS token (``base64("user:password")``), or None if it is not
    one. The user name is safe to show; the rest of the decoded text is dropped at once."""
    try:
        decoded = base64.b64decode(token.strip().encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    username, sep, _rest = decoded.partition(":")
    return username if sep and username else None


def verify_token(
    url: str, token: Secret, *, proxy: ProxySettings | None = None, timeout: float = 10.0
) -> str:
    """Ask ``url`` for ``GET /api/App/Version`` with ``token``; the server's version on success.

    One attempt, no retries: a person is waiting. ``LoginError`` says whether the server refused
    the credentials, could not be reached, or answered something else.
    """
    from wats.api import WatsClient
    from wats.api.errors import (
        AuthenticationError,
        ForbiddenError,
        WatsConnectionError,
        WatsError,
        WatsHTTPError,
    )
    from wats.api.retry import RetryPolicy

    try:
        client = WatsClient(url, token, timeout=timeout, retry=RetryPolicy.never(), proxy=proxy)
    except ValueError as exc:
        raise LoginError(f"cannot use {url!r}: {exc}") from None
    try:
        with client:
            return client.app.version()
    except (AuthenticationError, ForbiddenError) as exc:
        raise LoginError(
            f"the server refused these credentials ({exc.status_code} from {client.base_url}); "
            "check the user name and password (or the token) and try again"
        ) from None
    except WatsConnectionError as exc:
        raise LoginError(
            f"cannot reach {client.base_url} ({_reason(exc)}); check the URL, the network "
            "and the proxy settings ('wats-supervisor proxy show')"
        ) from None
    except WatsHTTPError as exc:
        if exc.status_code == 407:
            raise LoginError(
                "the proxy refused its credentials (407); fix them with 'wats-supervisor proxy set'"
            ) from None
        raise LoginError(
            f"{client.base_url} answered {exc.status_code} to GET /api/App/Version "
            f"({_reason(exc)}); is this a WATS server?"
        ) from None
    except WatsError as exc:
        raise LoginError(
            f"{client.base_url} did not answer like a WATS server ({_reason(exc)})"
        ) from None


def login(
    config: ClientConfig,
    url: str,
    username: str,
    token: Secret,
    *,
    store: ConnectionStore | None = None,
) -> ConnectionConfig:
    """Store ``token`` (encrypted) as the login of ``username`` at ``url``.

    Does not verify: call ``verify_token`` first. Proxy settings and health settings in an
    existing record are kept; statistics restart when the server changes.
    """
    store = store or connection_store(config)
    encrypted = store.encrypt(token)
    now = utc_now()

    def change(current: ConnectionConfig | None) -> ConnectionConfig:
        record = current or ConnectionConfig()
        if current is not None and not same_server(current.server_url, url):
            fresh = ConnectionConfig(health=record.health, proxy=record.proxy)
            record = fresh
        return record.model_copy(
            update={
                "server_url": _normalised_for_display(url),
                "username": username,
                "token": encrypted,
                "logged_in_at": now,
            }
        )

    return _stored(store.update(change))


def logout(config: ClientConfig, *, store: ConnectionStore | None = None) -> str | None:
    """Remove the stored token; returns the user name that was logged in (None if nobody was).

    The rest of the record (server URL, proxy, statistics) stays: logging out is about the
    credential, not the connection's history.
    """
    store = store or connection_store(config)
    previous: list[str | None] = [None]

    def change(current: ConnectionConfig | None) -> ConnectionConfig | None:
        if current is None or current.token is None:
            return None
        previous[0] = current.username
        return current.model_copy(update={"token": None, "username": None, "logged_in_at": None})

    store.update(change)
    return previous[0]


def set_proxy(
    config: ClientConfig, settings: ProxySettings, *, store: ConnectionStore | None = None
) -> ConnectionConfig:
    """Store ``settings`` (password encrypted) in the record, replacing earlier ones."""
    store = store or connection_store(config)
    stored = store.stored_proxy(settings)

    def change(current: ConnectionConfig | None) -> ConnectionConfig:
        record = current or ConnectionConfig(server_url=config.server.url)
        return record.model_copy(update={"proxy": stored})

    return _stored(store.update(change))


def clear_proxy(config: ClientConfig, *, store: ConnectionStore | None = None) -> bool:
    """Remove stored proxy settings; True if there were any."""
    store = store or connection_store(config)
    had: list[bool] = [False]

    def change(current: ConnectionConfig | None) -> ConnectionConfig | None:
        if current is None or current.proxy is None:
            return None
        had[0] = True
        return current.model_copy(update={"proxy": None})

    store.update(change)
    return had[0]


def record_health(
    config: ClientConfig,
    state: ConnectionState | str,
    *,
    url: str,
    at: float | None = None,
    failed: bool = False,
    error: str | None = None,
    settings: HealthCheckSettings | None = None,
    store: ConnectionStore | None = None,
    first_of_run: bool = False,
) -> ConnectionConfig | None:
    """Count one health check of ``url`` and its verdict ``state`` into the record.

    A change to ONLINE counts a connection, a change from ONLINE to OFFLINE a disconnection,
    and stamps ``last_connected``/``last_disconnected``. ``first_of_run``: the first check of a
    health worker's process; the state left in the record by an earlier run is not the link's
    state now (the supervisor may have been stopped for days), so the verdict starts a new
    ``state_since`` (``status`` showed "ONLINE since" the first connection ever) and an ONLINE
    counts as a new connection. Nothing is decrypted: this is cheap and
    needs no key. A record kept for another server is left alone (its statistics are about that
    server); with no record at all, one without credentials is started. ``error`` must already
    be token-free (the health worker's ``describe_error``).
    """
    store = store or connection_store(config)
    verdict = ConnectionState(state)
    moment = datetime.fromtimestamp(at, UTC) if at is not None else utc_now()

    def change(current: ConnectionConfig | None) -> ConnectionConfig | None:
        if current is not None and current.server_url and not same_server(current.server_url, url):
            return None
        record = current or ConnectionConfig(server_url=_normalised_for_display(url))
        stats = record.stats.model_copy(
            update={
                "health_checks": record.stats.health_checks + 1,
                "failed_checks": record.stats.failed_checks + (1 if failed else 0),
            }
        )
        update: dict[str, object] = {
            "stats": stats,
            "state": verdict,
            "last_error": error if verdict is ConnectionState.OFFLINE else None,
        }
        if not record.server_url:
            update["server_url"] = _normalised_for_display(url)
        if settings is not None:
            update["health"] = settings
        previous = ConnectionState.UNKNOWN if first_of_run else record.state
        if verdict is not previous:
            update["state_since"] = moment
            if verdict is ConnectionState.ONLINE:
                stats.connections += 1
                update["last_connected"] = moment
            elif verdict is ConnectionState.OFFLINE and previous is ConnectionState.ONLINE:
                stats.disconnections += 1
                update["last_disconnected"] = moment
        return record.model_copy(update=update)

    return store.update(change)


# -- helpers ------------------------------------------------------------------------------------


def _normalised(url: str) -> str:
    text = url.strip().rstrip("/")
    if text.lower().endswith("/api"):
        text = text[:-4].rstrip("/")
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text.lower()
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


def _normalised_for_display(url: str) -> str:
    text = url.strip().rstrip("/")
    if text.lower().endswith("/api"):
        text = text[:-4].rstrip("/")
    return text


def _stored(record: ConnectionConfig | None) -> ConnectionConfig:
    if record is None:  # pragma: no cover - the change functions above always return a record
        raise RuntimeError("the connection record was not written")
    return record


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
