"""Client-side rate limiter: a sliding window of request timestamps.

WATS servers throttle clients that send too much (429). Pacing ourselves is cheaper than being
throttled, so every request first takes a slot here. The window is shared by threads and asyncio
tasks alike: the bookkeeping sits behind a ``threading.Lock`` held only for arithmetic, and the
waiting happens outside it (``time.sleep`` for threads, ``asyncio.sleep`` for tasks), so a
waiting task never blocks the event loop and a waiting thread never blocks other threads.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["RateLimiter", "RateLimiterStats"]

DEFAULT_MAX_REQUESTS = 500
DEFAULT_WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class RateLimiterStats:
    """A snapshot of what the limiter has done so far."""

    total_requests: int
    total_wait_time: float
    throttle_count: int


class RateLimiter:
    """Allow at most ``max_requests`` in any ``window`` seconds.

    ``enabled=False`` turns pacing off while still counting requests. ``clock``, ``sleep`` and
    ``async_sleep`` are injectable so tests run on a fake clock instead of waiting.
    """

    def __init__(
        self,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        window: float = DEFAULT_WINDOW_SECONDS,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, got {max_requests}")
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        self.max_requests = max_requests
        self.window = float(window)
        self.enabled = enabled
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._lock = threading.Lock()
        self._stamps: deque[float] = deque()
        self._total_requests = 0
        self._total_wait = 0.0
        self._throttles = 0

    @classmethod
    def disabled(cls) -> RateLimiter:
        """A limiter that never waits (it still counts requests)."""
        return cls(enabled=False)

    def acquire(self) -> float:
        """Take a slot, sleeping the calling thread until one is free; return the seconds waited."""
        waited = 0.0
        throttled = False
        while True:
            delay = self._try_take(throttled)
            if delay <= 0:
                self._add_wait(waited)
                return waited
            throttled = True
            self._sleep(delay)
            waited += delay

    async def acquire_async(self) -> float:
        """Take a slot, suspending the calling task until one is free; return the seconds waited."""
        waited = 0.0
        throttled = False
        while True:
            delay = self._try_take(throttled)
            if delay <= 0:
                self._add_wait(waited)
                return waited
            throttled = True
            await self._async_sleep(delay)
            waited += delay

    @property
    def stats(self) -> RateLimiterStats:
        """Totals since creation (or the last ``reset_stats``)."""
        with self._lock:
            return RateLimiterStats(self._total_requests, self._total_wait, self._throttles)

    def reset_stats(self) -> None:
        """Zero the counters; the window itself is kept."""
        with self._lock:
            self._total_requests = 0
            self._total_wait = 0.0
            self._throttles = 0

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"RateLimiter({self.max_requests}/{self.window:g}s, {state})"

    def _try_take(self, already_throttled: bool) -> float:
        """Record a request and return 0, or return how long to wait before trying again."""
        with self._lock:
            if not self.enabled:
                self._total_requests += 1
                return 0.0
            now = self._clock()
            horizon = now - self.window
            while self._stamps and self._stamps[0] <= horizon:
                self._stamps.popleft()
            if len(self._stamps) < self.max_requests:
                self._stamps.append(now)
                self._total_requests += 1
                return 0.0
            if not already_throttled:
                self._throttles += 1
            # Never return 0 here: a zero wait would spin without letting the clock move.
            return max(self._stamps[0] + self.window - now, 1e-6)

    def _add_wait(self, waited: float) -> None:
        if waited:
            with self._lock:
                self._total_wait += waited
