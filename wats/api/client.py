"""``WatsClient`` and ``AsyncWatsClient``: two thin faces over one core.

They mirror each other name for name; the async one awaits where the sync one blocks. Both
expose the domain services as attributes — ``client.report``, ``client.process``, ``client.app``
— and a low-level ``request`` for anything the services do not cover.

The HTTP transport is the test seam: pass ``transport=httpx.MockTransport(...)`` (or an
``ASGITransport``) to run the real client against a fake or in-process server.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from wats.api._client import DEFAULT_TIMEOUT, ApiCall, BaseWatsClient
from wats.api.auth import Secret
from wats.api.errors import WatsError
from wats.api.proxy import ProxySettings
from wats.api.ratelimit import RateLimiter
from wats.api.response import Response
from wats.api.retry import RetryPolicy
from wats.api.services.app import AppService, AsyncAppService
from wats.api.services.process import AsyncProcessService, ProcessService
from wats.api.services.report import AsyncReportService, ReportService
from wats.api.station import Station

__all__ = ["AsyncWatsClient", "WatsClient"]

T = TypeVar("T")


class WatsClient(BaseWatsClient):
    """Blocking client for the WATS REST API. Safe to share between threads.

    Every request waits for a rate-limiter slot, and transient failures are retried according to
    ``retry`` (a ``RetryPolicy``). Errors are raised as ``wats.api.errors`` types.

    ``proxy`` takes :class:`~wats.api.proxy.ProxySettings` (mode none, system or manual; the
    settings then decide ``trust_env`` too, and a loopback server is always reached directly)
    or, as httpx does, a proxy URL or ``httpx.Proxy``.

    >>> with WatsClient("http://127.0.0.1:8080", token) as client:   # doctest: +SKIP
    ...     client.app.version()
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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            token,
            timeout=timeout,
            verify=verify,
            proxy=proxy,
            trust_env=trust_env,
            rate_limiter=rate_limiter,
            retry=retry,
            station=station,
            user_agent=user_agent,
        )
        self._http = httpx.Client(transport=transport, **self._httpx_options())
        self.report = ReportService(self)
        self.process = ProcessService(self)
        self.app = AppService(self)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        content_type: str | None = None,
        retry: bool = True,
    ) -> Response:
        """Send one request (with rate limiting and retries); raise a typed error on failure."""
        call = self._make_call(
            method,
            path,
            params=params,
            json=json,
            content=content,
            content_type=content_type,
            retry=retry,
        )
        return self.execute(call)

    def execute(self, call: ApiCall[T]) -> T:
        """Run a prepared ``ApiCall`` and return its parsed answer."""
        attempt = 0
        while True:
            attempt += 1
            self.rate_limiter.acquire()
            outcome: Response | WatsError
            try:
                answer = self._http.request(call.method, call.path, **call.httpx_kwargs())
            except httpx.TransportError as exc:
                outcome = self._transport_error(call, exc)
                cause: BaseException | None = exc
            else:
                outcome = self._outcome(call, answer)
                cause = None
            if isinstance(outcome, Response):
                return call.parse(outcome)
            delay = self._retry_delay(call, attempt, outcome)
            if delay is None:
                raise outcome from cause
            self.retry_policy.sleep(delay)

    def close(self) -> None:
        """Close the connection pool. The client cannot be used afterwards."""
        self._http.close()

    @property
    def is_closed(self) -> bool:
        """True once ``close`` has run."""
        return self._http.is_closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncWatsClient(BaseWatsClient):
    """The asyncio twin of ``WatsClient``: same names, awaited.

    Share one instance between tasks; the rate limiter and retry stats are task- and thread-safe.
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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            token,
            timeout=timeout,
            verify=verify,
            proxy=proxy,
            trust_env=trust_env,
            rate_limiter=rate_limiter,
            retry=retry,
            station=station,
            user_agent=user_agent,
        )
        self._http = httpx.AsyncClient(transport=transport, **self._httpx_options())
        self.report = AsyncReportService(self)
        self.process = AsyncProcessService(self)
        self.app = AsyncAppService(self)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        content_type: str | None = None,
        retry: bool = True,
    ) -> Response:
        """Send one request (with rate limiting and retries); raise a typed error on failure."""
        call = self._make_call(
            method,
            path,
            params=params,
            json=json,
            content=content,
            content_type=content_type,
            retry=retry,
        )
        return await self.execute(call)

    async def execute(self, call: ApiCall[T]) -> T:
        """Run a prepared ``ApiCall`` and return its parsed answer."""
        attempt = 0
        while True:
            attempt += 1
            await self.rate_limiter.acquire_async()
            outcome: Response | WatsError
            try:
                answer = await self._http.request(call.method, call.path, **call.httpx_kwargs())
            except httpx.TransportError as exc:
                outcome = self._transport_error(call, exc)
                cause: BaseException | None = exc
            else:
                outcome = self._outcome(call, answer)
                cause = None
            if isinstance(outcome, Response):
                return call.parse(outcome)
            delay = self._retry_delay(call, attempt, outcome)
            if delay is None:
                raise outcome from cause
            await self.retry_policy.async_sleep(delay)

    async def close(self) -> None:
        """Close the connection pool. The client cannot be used afterwards."""
        await self._http.aclose()

    async def aclose(self) -> None:
        """Alias of ``close`` for code written against httpx's naming."""
        await self.close()

    @property
    def is_closed(self) -> bool:
        """True once ``close`` has run."""
        return self._http.is_closed

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
