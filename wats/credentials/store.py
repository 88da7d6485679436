"""Where the connection record lives and how it is read, changed and written.

Folder: ``<instance data>/credentials/`` (mode 0700), holding ``connection.json`` (the record,
mode 0600), ``salt`` (16 random bytes, mode 0600, made on the first encryption) and
``connection.lock``. Why the instance data dir and not beside the config file: instances sharing
one config file may log in to different servers; a machine running on built-in defaults has no
config folder at all; and config files are the thing people copy, mail and commit, so keeping
credentials apart means such a copy carries none.

Writers are the CLI (login, logout, proxy) and the health worker (state and statistics), in
different processes: every change is a read-modify-write under the lock file, written atomically
(``wats.fsutil.atomic_write``), so a health update can never resurrect a token that ``logout``
just removed, nor drop one that ``login`` just stored.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from wats.api.auth import Secret
from wats.api.proxy import ProxySettings
from wats.credentials.crypto import (
    KDF_ITERATIONS,
    CredentialError,
    MachineCipher,
    current_machine_id,
    load_or_create_salt,
    read_salt,
)
from wats.credentials.record import ConnectionConfig, EncryptedValue, StoredProxy
from wats.fsutil import atomic_write
from wats.platform import InstanceLock, LockHeld

__all__ = ["CREDENTIALS_DIR_NAME", "RECORD_FILE_NAME", "SALT_FILE_NAME", "ConnectionStore"]

CREDENTIALS_DIR_NAME = "credentials"
RECORD_FILE_NAME = "connection.json"
SALT_FILE_NAME = "salt"
LOCK_FILE_NAME = "connection.lock"
# A writer holds the lock for one small file write; waiting longer than this means trouble.
_LOCK_WAIT_SECONDS = 10.0
_LOCK_POLL_SECONDS = 0.02


class ConnectionStore:
    """The credential folder of one instance.

    ``machine_id`` (a callable, for tests) replaces this machine's id as the key material.
    """

    def __init__(self, folder: Path, *, machine_id: Callable[[], str] | None = None) -> None:
        self.folder = Path(folder)
        self.record_path = self.folder / RECORD_FILE_NAME
        self.salt_path = self.folder / SALT_FILE_NAME
        self.lock_path = self.folder / LOCK_FILE_NAME
        self._machine_id = machine_id or current_machine_id

    def __repr__(self) -> str:
        return f"ConnectionStore({str(self.folder)!r})"

    # ---- the record -----------------------------------------------------------------------

    def load(self) -> ConnectionConfig | None:
        """The record, or None when there is none; ``CredentialError`` when it is unreadable."""
        try:
            text = self.record_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialError(
                f"cannot read {self.record_path}: {type(exc).__name__}; fix its permissions or "
                "run 'wats-supervisor login' again"
            ) from None
        try:
            return ConnectionConfig.model_validate(json.loads(text))
        except (ValueError, ValidationError):
            raise CredentialError(
                f"{self.record_path} is damaged (not a valid connection record); "
                "run 'wats-supervisor login' again"
            ) from None

    def save(self, record: ConnectionConfig) -> None:
        """Write ``record`` atomically, mode 0600, in a folder of mode 0700."""
        self._ensure_folder()
        payload = json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
        atomic_write(self.record_path, payload.encode("utf-8"), mode=0o600)

    def update(
        self, change: Callable[[ConnectionConfig | None], ConnectionConfig | None]
    ) -> ConnectionConfig | None:
        """Read, apply ``change``, write — all under the lock. ``change`` returning None leaves
        the file as it is; the result is what is now stored."""
        self._ensure_folder()
        with self._locked():
            current = self.load()
            changed = change(current)
            if changed is None:
                return current
            self.save(changed)
            return changed

    # ---- secrets --------------------------------------------------------------------------

    def encrypt(self, secret: Secret) -> EncryptedValue:
        """``secret`` encrypted with this machine's key (making the salt on first use)."""
        self._ensure_folder()
        salt = load_or_create_salt(self.salt_path)
        cipher = MachineCipher(self._machine_id(), salt, KDF_ITERATIONS)
        return EncryptedValue(
            ciphertext=cipher.encrypt(secret),
            iterations=cipher.iterations,
            key_check=cipher.key_check,
        )

    def decrypt(self, value: EncryptedValue, what: str) -> Secret:
        """The clear ``what`` (e.g. "API token") inside ``value``, or a ``CredentialError``
        that says to log in again."""
        if value.kdf != "pbkdf2-sha256":
            raise CredentialError(
                f"the {what} in {self.record_path} uses an unknown key derivation "
                f"({value.kdf!r}); run 'wats-supervisor login' again"
            )
        salt = read_salt(self.salt_path)
        if salt is None:
            raise CredentialError(
                f"the salt file {self.salt_path} is missing, so the {what} in "
                f"{self.record_path} cannot be decrypted; run 'wats-supervisor login' again"
            )
        cipher = MachineCipher(self._machine_id(), salt, value.iterations)
        return cipher.decrypt(
            value.ciphertext, key_check=value.key_check or None, what=what, source=self.record_path
        )

    def token(self) -> Secret | None:
        """The stored API token, decrypted (None when nobody is logged in)."""
        record = self.load()
        if record is None or record.token is None:
            return None
        return self.decrypt(record.token, "API token")

    def proxy(self) -> ProxySettings | None:
        """The stored proxy settings with the password decrypted (None when none are stored)."""
        record = self.load()
        if record is None or record.proxy is None:
            return None
        return self.proxy_settings(record.proxy)

    def proxy_settings(self, stored: StoredProxy) -> ProxySettings:
        """``stored`` as the client's ``ProxySettings`` (password decrypted)."""
        password = self.decrypt(stored.password, "proxy password") if stored.password else None
        return ProxySettings(
            mode=stored.mode,  # type: ignore[arg-type]  # validated by ProxySettings
            host=stored.host,
            port=stored.port,
            username=stored.username,
            password=password,
        )

    def stored_proxy(self, settings: ProxySettings) -> StoredProxy:
        """``settings`` ready for the record (password encrypted)."""
        password = settings.password
        return StoredProxy(
            mode=settings.mode,
            host=settings.host,
            port=settings.port,
            username=settings.username,
            password=self.encrypt(password) if password else None,
        )

    # ---- plumbing -------------------------------------------------------------------------

    def _ensure_folder(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.name != "nt" and stat.S_IMODE(self.folder.stat().st_mode) != 0o700:
            os.chmod(self.folder, 0o700)

    def _locked(self) -> InstanceLock:
        lock = InstanceLock(self.lock_path)
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while True:
            try:
                lock.acquire()
                return lock
            except LockHeld as exc:
                if time.monotonic() > deadline:
                    raise CredentialError(
                        f"{self.lock_path} stayed locked for {_LOCK_WAIT_SECONDS:g} s "
                        f"(held by pid {exc.pid}); try again"
                    ) from None
            # Another process holds the lock for one small write; polling is the only way to
            # wait for an flock without blocking forever.
            time.sleep(_LOCK_POLL_SECONDS)
