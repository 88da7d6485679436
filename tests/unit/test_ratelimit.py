"""The sliding-window rate limiter, on a fake clock so no test waits for real."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from wats.api.ratelimit import RateLimiter


class FakeClock:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


def make_limiter(clock: FakeClock, max_requests: int = 3, window: float = 10.0) -> RateLimiter:
    return RateLimiter(
        max_requests, window, clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep
    )


def test_defaults_are_500_requests_per_60_seconds() -> None:
    limiter = RateLimiter()
    assert (limiter.max_requests, limiter.window, limiter.enabled) == (500, 60.0, True)


def test_requests_within_the_limit_do_not_wait() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert clock.sleeps == []
    assert limiter.stats.total_requests == 3
    assert limiter.stats.throttle_count == 0


def test_request_over_the_limit_waits_until_the_oldest_leaves_the_window() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock)
    limiter.acquire()
    clock.now += 4
    limiter.acquire()
    limiter.acquire()
    waited = limiter.acquire()
    assert waited == pytest.approx(6.0)
    assert limiter.stats.throttle_count == 1
    assert limiter.stats.total_wait_time == pytest.approx(6.0)
    assert limiter.stats.total_requests == 4


def test_window_slides_so_old_requests_stop_counting() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock)
    for _ in range(3):
        limiter.acquire()
    clock.now += 10.5
    assert limiter.acquire() == 0.0
    assert limiter.stats.throttle_count == 0


def test_no_more_than_max_requests_in_any_window() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock, max_requests=5, window=1.0)
    stamps = []
    for _ in range(23):
        limiter.acquire()
        stamps.append(clock())
    for i, start in enumerate(stamps):
        in_window = [t for t in stamps[i:] if t < start + 1.0]
        assert len(in_window) <= 5


def test_disabled_limiter_never_waits_but_counts() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, 10.0, enabled=False, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        limiter.acquire()
    assert clock.sleeps == []
    assert limiter.stats.total_requests == 10
    assert RateLimiter.disabled().enabled is False


async def test_async_acquire_waits_on_the_async_sleep() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock, max_requests=2)
    await limiter.acquire_async()
    await limiter.acquire_async()
    waited = await limiter.acquire_async()
    assert waited == pytest.approx(10.0)
    assert limiter.stats.throttle_count == 1


async def test_concurrent_tasks_share_one_window() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock, max_requests=4, window=1.0)
    times: list[float] = []

    async def worker() -> None:
        for _ in range(5):
            await limiter.acquire_async()
            times.append(clock())

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(4))), timeout=5)
    assert len(times) == 20
    times.sort()
    for i, start in enumerate(times):
        assert len([t for t in times[i:] if t < start + 1.0]) <= 4


def test_threads_share_one_window_with_a_real_clock() -> None:
    limiter = RateLimiter(10, 0.2)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert limiter.stats.total_requests == 30
    stamps.sort()
    for i, start in enumerate(stamps):
        # Small slack for the gap between acquire() returning and the stamp being taken.
        assert len([t for t in stamps[i:] if t < start + 0.2 - 0.01]) <= 10
    assert limiter.stats.throttle_count >= 1


def test_reset_stats_zeroes_counters() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock)
    limiter.acquire()
    limiter.reset_stats()
    assert limiter.stats.total_requests == 0


@pytest.mark.parametrize(("max_requests", "window"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_nonsense_limits_are_refused(max_requests: int, window: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(max_requests, window)
