"""Encrypting secrets at rest with a key bound to this machine.

The key is PBKDF2-HMAC-SHA256 over the machine id with a random per-install salt; the cipher is
Fernet (AES-128-CBC + HMAC-SHA256, authenticated). What this buys: a copy of the credential
file — a backup, a disk image, a config folder mailed to a colleague — is useless on another
machine. What it does not buy: protection from root or from the same user on the same machine,
who can read the machine id and the salt just as this code does (docs/credentials.md).

Deriving the key costs about half a second (that is the point of 600,000 iterations), so each
process derives it once per (machine id, salt, iterations) and keeps it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from wats.api.auth import Secret
from wats.fsutil import atomic_write
from wats.platform import MachineIdUnavailable, machine_id

__all__ = [
    "KDF_ITERATIONS",
    "MACHINE_ID_FILE_ENV",
    "SALT_BYTES",
    "CredentialError",
    "MachineCipher",
    "current_machine_id",
    "derive_key",
    "load_or_create_salt",
    "read_salt",
]

# OWASP's 2023 figure for PBKDF2-HMAC-SHA256. Stored in each record, so raising it later still
# reads records written with the old count.
KDF_ITERATIONS = 600_000
SALT_BYTES = 16
MACHINE_ID_FILE_ENV = "WATS_SUPERVISOR_MACHINE_ID_FILE"
_KEY_CHECK_LABEL = b"wats-supervisor key check v1"
_LOGIN_AGAIN = "run 'wats-supervisor login' again to store a fresh token"


class CredentialError(RuntimeError):
    """Stored credentials cannot be used; the message says why and what to run.

    Never carries the secret or the key: it travels into logs and worker exit reasons.
    """


def current_machine_id() -> str:
    """This machine's id, or the one in ``$WATS_SUPERVISOR_MACHINE_ID_FILE`` when set.

    The variable exists for containers (whose ``/etc/machine-id`` may be missing or shared by
    every container of an image) and for tests; it only chooses where the id is read from.
    Raises ``CredentialError`` when there is none.
    """
    override = os.environ.get(MACHINE_ID_FILE_ENV)
    try:
        return machine_id([Path(override)] if override else None)
    except MachineIdUnavailable as exc:
        raise CredentialError(f"cannot protect credentials: {exc}") from None


@functools.lru_cache(maxsize=8)
def derive_key(machine: str, salt: bytes, iterations: int = KDF_ITERATIONS) -> bytes:
    """The 32-byte key for ``machine`` and ``salt`` (cached: the derivation is slow on purpose)."""
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations)
    return kdf.derive(machine.encode("utf-8"))


def read_salt(path: Path) -> bytes | None:
    """The salt stored at ``path``, or None when there is none (nothing was ever encrypted)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < SALT_BYTES:
        raise CredentialError(f"the salt file {path} is damaged (too short); {_LOGIN_AGAIN}")
    return data


def load_or_create_salt(path: Path) -> bytes:
    """The install's salt, created (random, mode 0600, atomically) on first use."""
    existing = read_salt(path)
    if existing is not None:
        return existing
    salt = secrets.token_bytes(SALT_BYTES)
    atomic_write(path, salt, mode=0o600)
    return salt


class MachineCipher:
    """Encrypts and decrypts short secrets with this machine's key; ``repr`` shows no key.

    ``key_check`` is a short HMAC of a fixed label under the key. Stored beside the ciphertext,
    it tells "encrypted on another machine (or with another salt)" apart from "the ciphertext was
    damaged", so each failure can say what happened. It reveals nothing an attacker could not
    learn by trying to decrypt the ciphertext itself.
    """

    __slots__ = ("_fernet", "iterations", "key_check")

    def __init__(self, machine: str, salt: bytes, iterations: int = KDF_ITERATIONS) -> None:
        key = derive_key(machine, salt, iterations)
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self.iterations = iterations
        self.key_check = hmac.new(key, _KEY_CHECK_LABEL, hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"MachineCipher(iterations={self.iterations}, key=[redacted])"

    def encrypt(self, secret: Secret) -> str:
        """The Fernet token (URL-safe base64 text) for ``secret``."""
        return self._fernet.encrypt(secret.reveal().encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, *, key_check: str | None, what: str, source: Path) -> Secret:
        """The secret inside ``token``; ``CredentialError`` naming ``what``/``source`` and saying
        to log in again when it was made elsewhere or was tampered with."""
        if key_check is not None and not hmac.compare_digest(key_check, self.key_check):
            raise CredentialError(
                f"the {what} in {source} was encrypted on another machine (or this machine's id "
                f"or the salt file changed) and cannot be decrypted here; {_LOGIN_AGAIN}"
            )
        try:
            clear = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeError, ValueError):
            raise CredentialError(
                f"the {what} in {source} is damaged or was tampered with and cannot be "
                f"decrypted; {_LOGIN_AGAIN}"
            ) from None
        return Secret(clear.decode("utf-8"))
