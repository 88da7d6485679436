"""Basic-token authentication, as WATS does it, and the server's own credentials file.

WATS API tokens are ``base64("username:password")`` sent as ``Authorization: Basic <token>``.
Because that is plain HTTP Basic auth, a browser's login prompt produces the same header, so the
HTML page and the API share one check. Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CREDENTIALS_FILE = "credentials.json"
DEFAULT_USERNAME = "wats"


def make_token(username: str, password: str) -> str:
    """Build the WATS API token for a username and password."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def token_username(token: str) -> str | None:
    """The username inside a token (safe to print), or None if the token is not base64 user:pw."""
    try:
        decoded = base64.b64decode(token.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    username, sep, _ = decoded.partition(":")
    return username if sep else None


class TokenChecker:
    """Decides whether an ``Authorization`` header carries one of the configured tokens.

    Every configured token is compared (constant time each) so the answer's timing does not reveal
    which token, or which prefix, nearly matched. The repr never shows tokens.
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens: tuple[bytes, ...] = tuple(t.encode("utf-8") for t in tokens if t)
        if not self._tokens:
            raise ValueError("at least one API token is required")

    def add(self, token: str) -> None:
        """Accept one more token (a registered client's); a new tuple keeps reads lock-free."""
        encoded = token.encode("utf-8")
        if encoded not in self._tokens:
            self._tokens = (*self._tokens, encoded)

    def replace(self, tokens: Iterable[str]) -> None:
        """Accept exactly ``tokens`` from now on: an administrator revoking a token (tests use
        it to make the server answer 401 to a client whose token was good a moment ago)."""
        replacement = tuple(t.encode("utf-8") for t in tokens if t)
        if not replacement:
            raise ValueError("at least one API token is required")
        self._tokens = replacement

    def __repr__(self) -> str:
        return f"TokenChecker(<{len(self._tokens)} token(s)>)"

    def accepts(self, authorization: str | None) -> bool:
        """True when the header is ``Basic <token>`` with a configured token."""
        if not authorization:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        offered = credentials.strip().encode("utf-8")
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(offered, token)
        return matched


@dataclass(frozen=True)
class StoredCredentials:
    """Credentials the server created for itself; ``repr`` hides the password and token."""

    path: Path
    username: str
    password: str

    @property
    def token(self) -> str:
        """The Basic token clients must send."""
        return make_token(self.username, self.password)

    def __repr__(self) -> str:
        return f"StoredCredentials(path={str(self.path)!r}, username={self.username!r})"


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data folder private to the user (0700): it holds credentials and reports."""
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)


def load_or_create_credentials(data_dir: Path) -> StoredCredentials:
    """Reuse ``<data>/credentials.json`` or create it once (user ``wats``, random password, 0600).

    Created with O_EXCL so two servers starting on one folder cannot both write different secrets;
    the loser reads the winner's file.
    """
    prepare_data_dir(data_dir)
    path = data_dir / CREDENTIALS_FILE
    if not path.exists():
        password = secrets.token_urlsafe(24)
        # The token is derivable from the two others; it is written too because it is what a
        # client (or the README's example) needs, and the file is private (0600) either way.
        payload = json.dumps(
            {
                "username": DEFAULT_USERNAME,
                "password": password,
                "token": make_token(DEFAULT_USERNAME, password),
            },
            indent=2,
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload + "\n")
                handle.flush()
                os.fsync(handle.fileno())
    try:
        data = json.loads(path.read_text("utf-8"))
        return StoredCredentials(
            path=path, username=str(data["username"]), password=str(data["password"])
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"credentials file {path} is unreadable or malformed; delete it to create new ones"
        ) from exc
