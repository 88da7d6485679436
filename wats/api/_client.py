"""The client core shared by ``WatsClient`` and ``AsyncWatsClient``.

Like httpx's ``BaseClient``, everything that does not depend on *how* bytes are sent lives
here once: base-URL normalisation, auth, headers, timeouts, TLS and proxy options, turning an
answer into a ``Response`` or a typed error, and the retry bookkeeping. The two faces add only
the sending loop (blocking or awaiting).

Requests are described as ``ApiCall`` values (method, path, parameters, body, and how to read
the answer). Repositories build them without doing I/O, so one repository serves both faces.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

import wats
from wats.api.auth import BasicTokenAuth, Secret
from wats.api.errors import (
    ProxyAuthenticationError,
    WatsConnectionError,
    WatsError,
    WatsTimeoutError,
    error_from_response,
)
from wats.api.proxy import ProxySettings, proxy_arguments
from wats.api.ratelimit import RateLimiter
from wats.api.response import Response
from wats.api.retry import RetryPolicy
from wats.api.station import Station, StationRegistry

__all__ = ["ApiCall", "BaseWatsClient", "normalize_base_url"]

logger = logging.getLogger("wats.api")

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
_API_SUFFIX = re.compile(r"/api/?$", re.IGNORECASE)


def _as_response(response: Response) -> Response:
    return response


@dataclass(frozen=True)
class ApiCall(Generic[T]):
    """One request to make and the function that reads its successful answer.

    Built by repositories without I/O; executed by either client face. ``retry=False`` opts a
    call out of retries (no WATS call needs it today: even submission is idempotent by id).
    """

    method: str
    path: str
    parse: Callable[[Response], T] = field(default=_as_response)  # type: ignore[assignment]
    params: Mapping[str, str] | None = None
    json: Any = None
    content: bytes | None = None
    content_type: str | None = None
    retry: bool = True

    def httpx_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client.request``."""
        kwargs: dict[str, Any] = {}
        if self.params:
            kwargs["params"] = dict(self.params)
        if self.content is not None:
            kwargs["content"] = self.content
        elif self.json is not None:
            kwargs["json"] = self.json
        if self.content_type:
            kwargs["headers"] = {"Content-Type": self.content_type}
        return kwargs


def normalize_base_url(url: str) -> str:
    """``https://x.wats.com/``, ``https://x.wats.com/api`` and ``https://x.wats.com`` all give
    ``https://x.wats.com``: routes are absolute (``/api/...``) below the server root.
    """
    cleaned = url.strip().rstrip("/")
    cleaned = _API_SUFFIX.sub("", cleaned).rstrip("/")
    parsed = httpx.URL(cleaned)
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {url!r}")
    return cleaned


class BaseWatsClient:
    """Configuration and answer handling common to the sync and async clients.

    Not used directly: construct ``WatsClient`` or ``AsyncWatsClient``.
    """

    def __init__(
        self,
        base_url: str,
        token: str | Secret,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        verify: bool | str | ssl.SSLContext = True,
        proxy: str | httpx.Proxy | ProxySettings | None = None,
        trust_env: bool = True,
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        station: Station | None = None,
        user_agent: str | None = None,
    ) -> None:
        self._base_url = normalize_base_url(base_url)
        self._auth = BasicTokenAuth(token)
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.verify = verify
        #: The ``ProxySettings`` the client was given, if any (``describe()`` it for status).
        self.proxy_settings = proxy if isinstance(proxy, ProxySettings) else None
        if self.proxy_settings is not None:
            # The settings decide both: a manual proxy must not be overridden by the
            # environment, and mode "none" must not pick a proxy up from it.
            chosen = proxy_arguments(self.proxy_settings, self._base_url)
            self.proxy: str | httpx.Proxy | None = chosen["proxy"]
            self.trust_env: bool = chosen["trust_env"]
        else:
            self.proxy = proxy  # type: ignore[assignment]
            self.trust_env = trust_env
        self.rate_limiter = rate_limiter if rate_limiter is not None else RateLimiter()
        self.retry_policy = retry if retry is not None else RetryPolicy()
        self.user_agent = user_agent or f"wats-supervisor/{wats.__version__}"
        self.stations = StationRegistry([station] if station else None)

    @property
    def base_url(self) -> str:
        """The normalised server root, e.g. ``https://company.wats.com``."""
        return self._base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    def _httpx_options(self) -> dict[str, Any]:
        """Options for the underlying httpx client; the token travels only inside ``auth``."""
        return {
            "base_url": self._base_url,
            "auth": self._auth,
            "headers": {"User-Agent": self.user_agent, "Accept": "application/json"},
            "timeout": self.timeout,
            "verify": self.verify,
            "proxy": self.proxy,
            "trust_env": self.trust_env,
            "follow_redirects": False,
        }

    def _outcome(self, call: ApiCall[Any], answer: httpx.Response) -> Response | WatsError:
        """The decoded answer, or the typed error it means."""
        response = Response.from_httpx(answer)
        if response.is_success:
            return response
        if response.status_code == 407:
            # Not the WATS server speaking: the proxy in front of it refused us.
            return ProxyAuthenticationError(
                f"{call.method} {call.path} failed: HTTP 407: the HTTP proxy refused the "
                "request; check the proxy username and password in the proxy settings",
                method=call.method,
                path=call.path,
                status_code=407,
                response=response,
            )
        if 300 <= response.status_code < 400 and response.status_code != 304:
            # A redirect here usually means a wrong base URL (e.g. http -> https or a login page).
            location = response.headers.get("Location", "?")
            return error_from_response(
                Response(
                    status_code=response.status_code,
                    data=f"unexpected redirect to {location}; check base_url",
                    headers=response.headers,
                    raw=response.raw,
                ),
                call.method,
                call.path,
            )
        return error_from_response(response, call.method, call.path)

    def _transport_error(self, call: ApiCall[Any], exc: httpx.TransportError) -> WatsError:
        """Map an httpx transport failure to ``WatsTimeoutError`` or ``WatsConnectionError``;
        a proxy's refusal of our credentials (407 to ``CONNECT``) is permanent instead."""
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.ProxyError) and reason.startswith("407"):
            return ProxyAuthenticationError(
                f"{call.method} {call.path} failed: the HTTP proxy answered {reason}; check the "
                "proxy username and password in the proxy settings",
                method=call.method,
                path=call.path,
                status_code=407,
            )
        kind = WatsTimeoutError if isinstance(exc, httpx.TimeoutException) else WatsConnectionError
        return kind(
            f"{call.method} {call.path} failed: {type(exc).__name__}: {reason}",
            method=call.method,
            path=call.path,
        )

    def _retry_delay(self, call: ApiCall[Any], attempt: int, error: WatsError) -> float | None:
        """How long to wait before another attempt, or ``None`` to raise ``error`` now."""
        if not call.retry:
            return None
        delay = self.retry_policy.next_delay(attempt, error)
        if delay is not None:
            logger.warning(
                "%s %s attempt %d failed (%s); retrying in %.2fs",
                call.method,
                call.path,
                attempt,
                error,
                delay,
            )
        return delay

    @staticmethod
    def _make_call(
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        json: Any,
        content: bytes | str | None,
        content_type: str | None,
        retry: bool,
    ) -> ApiCall[Response]:
        if not path.startswith("/"):
            path = "/" + path
        body = content.encode() if isinstance(content, str) else content
        return ApiCall(
            method=method.upper(),
            path=path,
            params=params,
            json=json,
            content=body,
            content_type=content_type,
            retry=retry,
        )
