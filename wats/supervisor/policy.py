"""Restart policy: capped exponential backoff and the flapping breaker, as pure logic.

Kept free of processes, sockets and wall clocks (the clock is injected) so every number of the
policy can be unit-tested exactly, and the arbiter only asks "what now?".
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass(frozen=True)
class PolicySettings:
    """The numbers of the restart policy (all from ``[supervisor]`` in the config)."""

    backoff_first_seconds: float = 0.0
    backoff_base_seconds: float = 0.1
    backoff_max_seconds: float = 30.0
    backoff_reset_after_seconds: float = 60.0
    flap_max_restarts: int = 10
    flap_window_seconds: float = 60.0
    flap_cooldown_seconds: float = 300.0

    @classmethod
    def from_config(cls, supervisor: object) -> PolicySettings:
        """Pick the policy numbers out of a ``[supervisor]`` config section."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{name: getattr(supervisor, name) for name in names})


@dataclass
class Backoff:
    """Delay before the n-th consecutive restart: first, then base doubling, capped.

    A worker that ran for ``reset_after`` seconds before it exited counts as healthy again, so its
    next crash restarts at the first delay instead of where the last crash streak left off.
    """

    settings: PolicySettings
    failures: int = 0

    def next_delay(self, ran_for: float) -> float:
        """Record one exit after ``ran_for`` seconds of running; return the delay to restart."""
        if ran_for >= self.settings.backoff_reset_after_seconds:
            self.failures = 0
        self.failures += 1
        return self.delay_for(self.failures)

    def delay_for(self, attempt: int) -> float:
        """The delay of restart number ``attempt`` (1-based) of a streak."""
        s = self.settings
        if attempt <= 1:
            return min(s.backoff_first_seconds, s.backoff_max_seconds)
        return min(s.backoff_base_seconds * 2 ** (attempt - 2), s.backoff_max_seconds)

    def reset(self) -> None:
        """Forget the streak (manual start, or retry after the flapping cooldown)."""
        self.failures = 0


@dataclass
class FlapBreaker:
    """Trips when more than ``flap_max_restarts`` restarts fall within ``flap_window_seconds``.

    A tripped breaker means the worker goes FAILED (with an alarm) and is retried once after
    ``flap_cooldown_seconds``; retrying clears the history so the worker gets a fresh window.
    """

    settings: PolicySettings
    clock: Clock = time.monotonic
    _restarts: deque[float] = field(default_factory=deque)

    def record_restart(self) -> bool:
        """Record a restart now; return True when this restart trips the breaker."""
        now = self.clock()
        self._restarts.append(now)
        self._forget_before(now - self.settings.flap_window_seconds)
        return len(self._restarts) > self.settings.flap_max_restarts

    def restarts_in_window(self) -> int:
        """How many restarts the current window holds (for the alarm event)."""
        self._forget_before(self.clock() - self.settings.flap_window_seconds)
        return len(self._restarts)

    def reset(self) -> None:
        """Start a fresh window (after the cooldown or a manual start)."""
        self._restarts.clear()

    def _forget_before(self, cutoff: float) -> None:
        while self._restarts and self._restarts[0] < cutoff:
            self._restarts.popleft()


@dataclass(frozen=True)
class Decision:
    """What to do after an unplanned exit: restart after ``delay``, or fail for ``retry_in``."""

    failed: bool
    delay: float = 0.0
    attempt: int = 0
    restarts: int = 0
    retry_in: float = 0.0


@dataclass
class RestartPolicy:
    """Backoff and breaker together: the one question the arbiter asks after an exit."""

    settings: PolicySettings
    clock: Clock = time.monotonic
    backoff: Backoff = field(init=False)
    breaker: FlapBreaker = field(init=False)

    def __post_init__(self) -> None:
        self.backoff = Backoff(self.settings)
        self.breaker = FlapBreaker(self.settings, self.clock)

    def on_exit(self, ran_for: float) -> Decision:
        """Decide after an unplanned exit of a worker that ran for ``ran_for`` seconds."""
        delay = self.backoff.next_delay(ran_for)
        if self.breaker.record_restart():
            restarts = self.breaker.restarts_in_window()
            return Decision(
                failed=True, restarts=restarts, retry_in=self.settings.flap_cooldown_seconds
            )
        return Decision(failed=False, delay=delay, attempt=self.backoff.failures)

    def reset(self) -> None:
        """Fresh start: a manual start/restart or the retry after the cooldown."""
        self.backoff.reset()
        self.breaker.reset()
