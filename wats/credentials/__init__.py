"""Credentials at rest: the encrypted API token, the proxy password and the connection record.

``wats-supervisor login`` verifies a token against the server and stores it here, encrypted with
a key bound to this machine (``crypto``); the record (``record``) also keeps the link's state and
statistics, written by the health worker, and the proxy settings. Workers ask
``stored_token(config)`` through ``wats.workers.connection.resolve_server``. See
docs/credentials.md for what this protects, and what it does not.
"""

from __future__ import annotations

from wats.credentials.connection import (
    LoginError,
    clear_proxy,
    connection_store,
    credentials_dir,
    load_connection,
    login,
    logout,
    record_health,
    same_server,
    save_connection,
    set_proxy,
    stored_proxy,
    stored_token,
    token_username,
    verify_token,
)
from wats.credentials.crypto import MACHINE_ID_FILE_ENV, CredentialError
from wats.credentials.record import (
    ConnectionConfig,
    ConnectionState,
    ConnectionStats,
    EncryptedValue,
    HealthCheckSettings,
    StoredProxy,
)
from wats.credentials.store import ConnectionStore

__all__ = [
    "MACHINE_ID_FILE_ENV",
    "ConnectionConfig",
    "ConnectionState",
    "ConnectionStats",
    "ConnectionStore",
    "CredentialError",
    "EncryptedValue",
    "HealthCheckSettings",
    "LoginError",
    "StoredProxy",
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
