"""Retry policy: which failures to try again, and how long to wait first.

Transient failures (no connection, timeouts, 429, 500/502/503/504) usually clear up on their own,
so the client retries them with exponential backoff and jitter — jitter so that many stations
recovering from the same outage do not hammer the server in lockstep. A server's ``Retry-After``
(seconds or an HTTP date) wins over our own backoff, capped so a bad header cannot stall us.
Permanent failures (400/401/403/404/409) are never retried: the answer would be the same.

Report submission is retried like any other call. That is safe because a report carries its own
id and WATS replaces a report whose id it already has: a retry after a lost answer lands the
same report once, not twice.

The policy decides and counts; the client does the sleeping (threads or asyncio), using the
injectable ``sleep``/``async_sleep`` here so tests never wait for real.
"""

from __future__ import annotations

import asyncio
import random as _random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from wats.api.errors import RateLimitError, WatsConnectionError, WatsError, WatsHTTPError

__all__ = ["RetryPolicy", "RetryStats", "parse_retry_after"]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryStats:
    """A snapshot of the retries made so far."""

    total_retries: int
    total_retry_time: float


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), else ``None``.

    A date in the past means "now" (0). Unparseable values are ignored rather than trusted.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN guard
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max((when - current).total_seconds(), 0.0)


class RetryPolicy:
    """Exponential backoff with jitter: ``base_delay * 2**(n-1)``, capped at ``max_delay``.

    ``max_attempts`` counts the first try (3 means one try and up to two retries). Jitter scales
    each delay by a random factor in ``[1 - jitter, 1]``. ``max_retry_after`` caps how long a
    server's ``Retry-After`` may make us wait. ``max_attempts=1`` (or ``RetryPolicy.never()``)
    turns retrying off.
    """

    def __init__(
        self,
        max_attempts: int = 3,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        *,
        jitter: float = 0.5,
        max_retry_after: float = 120.0,
        retry_statuses: frozenset[int] = RETRYABLE_STATUSES,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if base_delay < 0 or max_delay < 0:
            raise ValueError("delays must not be negative")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {jitter}")
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self.max_retry_after = max_retry_after
        self.retry_statuses = retry_statuses
        self.sleep = sleep
        self.async_sleep = async_sleep
        self._random = random
        self._lock = threading.Lock()
        self._retries = 0
        self._retry_time = 0.0

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that makes exactly one attempt."""
        return cls(max_attempts=1)

    def is_retryable(self, error: WatsError) -> bool:
        """True for connection errors, timeouts and the retryable statuses; never for others."""
        if isinstance(error, WatsConnectionError):
            return True
        if isinstance(error, WatsHTTPError):
            return error.status_code in self.retry_statuses
        return False

    def backoff(self, attempt: int) -> float:
        """The jittered delay after failed attempt number ``attempt`` (1-based)."""
        raw = min(self.base_delay * (2 ** (attempt - 1)), self.max_delay)
        return raw * (1 - self.jitter * self._random())

    def next_delay(self, attempt: int, error: WatsError) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up and raise ``error``.

        Counts the retry in the stats when it returns a delay.
        """
        if attempt >= self.max_attempts or not self.is_retryable(error):
            return None
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            delay = min(error.retry_after, self.max_retry_after)
        else:
            delay = self.backoff(attempt)
        with self._lock:
            self._retries += 1
            self._retry_time += delay
        return delay

    @property
    def stats(self) -> RetryStats:
        """Totals since creation (or the last ``reset_stats``)."""
        with self._lock:
            return RetryStats(self._retries, self._retry_time)

    def reset_stats(self) -> None:
        """Zero the counters."""
        with self._lock:
            self._retries = 0
            self._retry_time = 0.0

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_attempts={self.max_attempts}, base_delay={self.base_delay:g}, "
            f"max_delay={self.max_delay:g})"
        )
