"""Authentication: WATS API tokens and how they travel.

A WATS token is ``base64("username:password")`` sent as ``Authorization: Basic <token>`` on every
request — no login round trip, no refresh. Because the token *is* the credential, it is kept in a
``Secret`` whose ``repr``/``str`` never show it, and ``redact_headers`` blanks it from anything
we log.
"""

from __future__ import annotations

import base64
from collections.abc import Generator, Iterable, Mapping

import httpx

__all__ = ["BasicTokenAuth", "Secret", "basic_token", "redact_headers"]

REDACTED = "[redacted]"
_SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def basic_token(username: str, password: str) -> str:
    """Build a WATS API token from a user name and password (``base64("user:password")``)."""
    if not username:
        raise ValueError("username must not be empty")
    if ":" in username:
        raise ValueError("username must not contain ':' (it separates user and password)")
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


class Secret:
    """A string that refuses to be printed: ``repr`` and ``str`` show ``[redacted]``.

    Call ``reveal()`` at the one place the clear value is needed.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The clear value. Use only to build the request header."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[type, tuple[str]]:
        # Pickling is allowed (process hand-over) but never by printing.
        return (Secret, (self._value,))


class BasicTokenAuth(httpx.Auth):
    """httpx auth flow that adds ``Authorization: Basic <token>`` to every request."""

    def __init__(self, token: str | Secret) -> None:
        secret = token if isinstance(token, Secret) else Secret(token.strip())
        if not secret:
            raise ValueError("the API token must not be empty")
        self._token = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach the header; WATS has no challenge/response, so one pass is enough."""
        request.headers["Authorization"] = f"Basic {self._token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return f"BasicTokenAuth(token={REDACTED!r})"


def redact_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | httpx.Headers,
) -> dict[str, str]:
    """A copy of ``headers`` safe to log: credential-bearing values replaced by ``[redacted]``."""
    items = headers.items() if isinstance(headers, Mapping | httpx.Headers) else headers
    return {
        name: (REDACTED if name.lower() in _SENSITIVE_HEADERS else value) for name, value in items
    }
