"""The connection record: who is logged in where, how the link is doing, how to reach it.

One JSON file per instance (``connection.json``, see ``wats.credentials.store``). Secrets in it
are :class:`EncryptedValue` s only — Fernet ciphertext plus the parameters needed to decrypt it
— so the file as a whole can be shown, backed up or attached to a support ticket without
exposing the token. The models never hold a clear secret.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from wats.credentials.crypto import KDF_ITERATIONS

__all__ = [
    "RECORD_FORMAT",
    "ConnectionConfig",
    "ConnectionState",
    "ConnectionStats",
    "EncryptedValue",
    "HealthCheckSettings",
    "StoredProxy",
    "utc_now",
]

RECORD_FORMAT = 1


def utc_now() -> datetime:
    """Now, in UTC (timestamps in the record are always timezone-aware)."""
    return datetime.now(UTC)


class _Model(BaseModel):
    # Unknown keys are ignored, not refused: a newer version may add fields, and an older one
    # reading the record must still find the token.
    model_config = ConfigDict(extra="ignore", validate_assignment=True)


class ConnectionState(StrEnum):
    """The last verdict of the health worker (UNKNOWN until it has probed once)."""

    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    UNKNOWN = "UNKNOWN"


class EncryptedValue(_Model):
    """A Fernet ciphertext and how its key was derived (PBKDF2-HMAC-SHA256 iterations over the
    machine id with the install's salt). ``key_check`` tells a key from another machine apart
    from a damaged ciphertext (see ``MachineCipher``)."""

    ciphertext: str = Field(repr=False, min_length=1)
    kdf: str = "pbkdf2-sha256"
    iterations: int = Field(default=KDF_ITERATIONS, ge=1)
    key_check: str = ""


class HealthCheckSettings(_Model):
    """How the health worker watches the server, as last reported by it.

    The ``[health]`` section of the config file is what the worker obeys; the record mirrors
    the values in effect so ``status`` can show them next to the statistics they produced.
    ``reconnect_attempts = 0`` means the worker never gives up.
    """

    interval_seconds: float = Field(default=30.0, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0)
    auto_reconnect: bool = True
    reconnect_attempts: int = Field(default=0, ge=0)
    reconnect_delay_seconds: float = Field(default=1.0, ge=0)


class ConnectionStats(_Model):
    """Counters since the record was created; a login keeps them, a fresh record starts at 0."""

    connections: int = Field(default=0, ge=0)  # changes to ONLINE
    disconnections: int = Field(default=0, ge=0)  # changes from ONLINE to OFFLINE
    health_checks: int = Field(default=0, ge=0)
    failed_checks: int = Field(default=0, ge=0)


class StoredProxy(_Model):
    """``wats.api.proxy.ProxySettings`` at rest: the password only as an ``EncryptedValue``."""

    mode: str = "none"
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    username: str | None = None
    password: EncryptedValue | None = None


class ConnectionConfig(_Model):
    """Everything this instance knows about its link to the WATS server.

    ``token`` is None when nobody is logged in (after ``logout``, or when only proxy settings
    or statistics were recorded); ``username`` and ``logged_in_at`` go with it.
    """

    format: int = RECORD_FORMAT
    server_url: str = ""
    username: str | None = None
    token: EncryptedValue | None = None
    logged_in_at: datetime | None = None
    state: ConnectionState = ConnectionState.UNKNOWN
    state_since: datetime | None = None
    last_connected: datetime | None = None
    last_disconnected: datetime | None = None
    last_error: str | None = None
    health: HealthCheckSettings = Field(default_factory=HealthCheckSettings)
    stats: ConnectionStats = Field(default_factory=ConnectionStats)
    proxy: StoredProxy | None = None

    @property
    def logged_in(self) -> bool:
        """True when a token is stored."""
        return self.token is not None

    def summary(self) -> dict[str, object]:
        """What ``status`` shows (JSON-ready): where, who, since when, the link's state and
        counters, the proxy's shape. Never the token, never a password, not even encrypted."""
        proxy = None
        if self.proxy is not None:
            proxy = {
                "mode": self.proxy.mode,
                "host": self.proxy.host,
                "port": self.proxy.port,
                "username": self.proxy.username,
                "password_stored": self.proxy.password is not None,
            }
        return {
            "server_url": self.server_url or None,
            "username": self.username if self.logged_in else None,
            "logged_in": self.logged_in,
            "logged_in_at": _iso(self.logged_in_at) if self.logged_in else None,
            "state": self.state.value,
            "state_since": _iso(self.state_since),
            "last_connected": _iso(self.last_connected),
            "last_disconnected": _iso(self.last_disconnected),
            "last_error": self.last_error,
            "health": self.health.model_dump(mode="json"),
            "stats": self.stats.model_dump(mode="json"),
            "proxy": proxy,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None
