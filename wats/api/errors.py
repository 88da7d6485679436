"""Typed errors for the WATS client.

One small hierarchy, so a caller catches at the level it cares about: ``WatsError`` for
anything, ``WatsHTTPError`` for an answer with a bad status, or one exact class. Every error
says whether it is ``permanent`` (sending the same request again cannot help: park the report)
or ``transient`` (try again later) — the uploader relies on that split, nothing else.

Messages carry the HTTP method, the path and the server's own message, never headers, so the
API token can never leak through an exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from wats.api.response import Response

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ForbiddenError",
    "NotFoundError",
    "ProxyAuthenticationError",
    "RateLimitError",
    "ServerError",
    "WatsConnectionError",
    "WatsError",
    "WatsHTTPError",
    "WatsProtocolError",
    "WatsTimeoutError",
    "error_from_response",
]


class WatsError(Exception):
    """Base of every error raised by ``wats.api``.

    ``transient`` errors may succeed when retried later; ``permanent`` ones never will.
    """

    transient: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status_code: int | None = None,
        server_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.status_code = status_code
        self.server_message = server_message

    @property
    def permanent(self) -> bool:
        """True when repeating the request cannot succeed (the opposite of ``transient``)."""
        return not self.transient

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class WatsHTTPError(WatsError):
    """The server answered, with a status that is not a success.

    ``response`` is the full answer (status, parsed body, headers) for callers who need more
    than the message. Statuses without a dedicated class land here (permanent for 4xx).
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status_code: int | None = None,
        server_message: str | None = None,
        response: Response | None = None,
    ) -> None:
        super().__init__(
            message,
            method=method,
            path=path,
            status_code=status_code,
            server_message=server_message,
        )
        self.response = response


class BadRequestError(WatsHTTPError):
    """400: the server refused the request or report as invalid; its message says why."""


class AuthenticationError(WatsHTTPError):
    """401: the token is missing or wrong. Fix the token; retrying will not help."""


class ForbiddenError(WatsHTTPError):
    """403: the token is valid but not allowed to do this."""


class NotFoundError(WatsHTTPError):
    """404: the report, route or object does not exist."""


class ProxyAuthenticationError(WatsHTTPError):
    """407: the HTTP proxy refused our proxy credentials (or wants some). Fix the proxy username
    and password in the proxy settings; retrying will not help."""


class ConflictError(WatsHTTPError):
    """409: the request conflicts with server state (e.g. a client id taken by another type)."""


class RateLimitError(WatsHTTPError):
    """429: the server throttles us. ``retry_after`` is its requested pause in seconds, if any."""

    transient: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status_code: int | None = 429,
        server_message: str | None = None,
        response: Response | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            method=method,
            path=path,
            status_code=status_code,
            server_message=server_message,
            response=response,
        )
        self.retry_after = retry_after


class ServerError(WatsHTTPError):
    """5xx: trouble on the server's side; worth trying again later."""

    transient: ClassVar[bool] = True


class WatsConnectionError(WatsError):
    """No answer: the connection could not be made or broke (DNS, refused, reset, TLS)."""

    transient: ClassVar[bool] = True


class WatsTimeoutError(WatsConnectionError):
    """No answer in time (connect, read, write or pool timeout)."""


class WatsProtocolError(WatsError):
    """The server answered with success but in a shape we cannot use (e.g. no report id).

    Permanent: the same request would produce the same unusable answer.
    """


_BY_STATUS: dict[int, type[WatsHTTPError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    407: ProxyAuthenticationError,
    409: ConflictError,
    429: RateLimitError,
}


def error_from_response(
    response: Response, method: str | None = None, path: str | None = None
) -> WatsHTTPError:
    """Build the typed error for an unsuccessful ``response``.

    The message reads ``"<METHOD> <path> failed: HTTP <status>: <server message>"`` so a log line
    tells the user which call failed and what the server said about it.
    """
    from wats.api.retry import parse_retry_after  # local: retry imports errors

    status = response.status_code
    server_message = response.error_message
    where = f"{method} {path} failed: " if method and path else ""
    detail = server_message or response.reason_phrase or "no message"
    message = f"{where}HTTP {status}: {detail}"
    if status == 429:
        return RateLimitError(
            message,
            method=method,
            path=path,
            status_code=status,
            server_message=server_message,
            response=response,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else WatsHTTPError
    return cls(
        message,
        method=method,
        path=path,
        status_code=status,
        server_message=server_message,
        response=response,
    )
