"""Fault injection: make the server slow, flaky, throttled or offline on purpose.

Why: the client's retry, backoff and queueing are only trustworthy if tested against a server that
really misbehaves over real sockets. Faults are set from CLI flags at start and changed at run time
through ``/admin/faults`` (or ``EmbeddedServer.set_faults``). The admin endpoints are exempt, so a
test can always turn faults off again. A seed makes random faults reproducible.

Order of evaluation per request: offline → latency → 429 → 503 → 500 → (for report submissions)
reject with 400. Counted faults (``throttle_next``, ``reject_next_reports``) count down once per
request they hit.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

ADMIN_PREFIX = "/admin/"
SUBMIT_PATHS = ("/api/report/wsjf", "/api/report/wsxf")


class FaultSettings(BaseModel):
    """The fault configuration; all zero/false means a well-behaved server.

    JSON keys are these field names (snake_case: the admin API is ours, not WATS's).
    """

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0.0, ge=0, description="added delay before every answer")
    error_500_probability: float = Field(0.0, ge=0, le=1, description="chance of a 500")
    error_503_probability: float = Field(0.0, ge=0, le=1, description="chance of a 503")
    throttle_next: int = Field(0, ge=0, description="answer the next N requests with 429")
    throttle_probability: float = Field(0.0, ge=0, le=1, description="chance of a 429")
    retry_after_seconds: int = Field(1, ge=0, description="Retry-After sent with 429/503")
    offline: bool = Field(False, description="answer everything (but /admin) with 503")
    reject_next_reports: int = Field(0, ge=0, description="answer the next N submits with 400")
    seed: int | None = Field(None, description="seed for the random faults (reproducible chaos)")


class FaultInjector:
    """Holds the current faults and decides, request by request, which one fires.

    Thread-safe: tests change faults from their own thread while the server's event loop reads.
    """

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._rng = random.Random()
        self.configure(settings or FaultSettings())

    @property
    def settings(self) -> FaultSettings:
        """A snapshot of the current faults (counters show what is left)."""
        with self._lock:
            return self._settings.model_copy()

    def configure(self, settings: FaultSettings) -> None:
        """Replace all faults at once; a seed restarts the random sequence."""
        with self._lock:
            self._settings = settings.model_copy()
            self._rng = random.Random(settings.seed)

    def update(self, **changes: Any) -> FaultSettings:
        """Change some faults and keep the rest (validated like a full configuration)."""
        with self._lock:
            merged = FaultSettings.model_validate({**self._settings.model_dump(), **changes})
            self._settings = merged
            if "seed" in changes:
                self._rng = random.Random(merged.seed)
            return merged.model_copy()

    def clear(self) -> None:
        """Back to a well-behaved server."""
        self.configure(FaultSettings())

    def decide(self, *, is_submit: bool) -> tuple[float, tuple[int, str, dict[str, str]] | None]:
        """Latency in seconds and the error to answer with (status, message, headers), if any."""
        with self._lock:
            s = self._settings
            delay = s.latency_ms / 1000.0
            retry_after = {"Retry-After": str(s.retry_after_seconds)}
            if s.offline:
                return delay, (503, "server is offline (fault injection)", retry_after)
            if s.throttle_next > 0:
                s.throttle_next -= 1
                return delay, (429, "too many requests (fault injection)", retry_after)
            if s.throttle_probability and self._rng.random() < s.throttle_probability:
                return delay, (429, "too many requests (fault injection)", retry_after)
            if s.error_503_probability and self._rng.random() < s.error_503_probability:
                return delay, (503, "service unavailable (fault injection)", retry_after)
            if s.error_500_probability and self._rng.random() < s.error_500_probability:
                return delay, (500, "internal server error (fault injection)", {})
            if is_submit and s.reject_next_reports > 0:
                s.reject_next_reports -= 1
                return delay, (400, "report rejected (fault injection)", {})
            return delay, None


class FaultMiddleware:
    """ASGI middleware applying :class:`FaultInjector` to every HTTP request except ``/admin/``.

    Plain ASGI (not BaseHTTPMiddleware) to keep the per-request cost negligible.
    """

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", "")).lower()
        if path.startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        is_submit = scope.get("method") == "POST" and path.rstrip("/") in SUBMIT_PATHS
        delay, error = self.injector.decide(is_submit=is_submit)
        if delay > 0:
            await asyncio.sleep(delay)
        if error is None:
            await self.app(scope, receive, send)
            return
        status, message, headers = error
        await _drain(receive)
        body = json.dumps({"message": message}).encode()
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive) -> None:
    """Read the request body we are refusing, so keep-alive connections stay usable."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
