"""Restart policy as pure logic: backoff numbers, reset after healthy, the flapping breaker."""

from __future__ import annotations

from wats.supervisor.policy import Backoff, FlapBreaker, PolicySettings, RestartPolicy


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_is_immediate_then_doubles_from_base_up_to_the_cap() -> None:
    backoff = Backoff(PolicySettings(backoff_max_seconds=1.0))
    delays = [backoff.next_delay(ran_for=0.5) for _ in range(7)]
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_backoff_starts_over_after_the_worker_ran_long_enough() -> None:
    backoff = Backoff(PolicySettings(backoff_reset_after_seconds=60.0))
    for _ in range(4):
        backoff.next_delay(ran_for=1.0)
    assert backoff.next_delay(ran_for=60.0) == 0.0
    assert backoff.next_delay(ran_for=1.0) == 0.1


def test_every_backoff_number_comes_from_the_settings() -> None:
    settings = PolicySettings(
        backoff_first_seconds=0.5, backoff_base_seconds=2.0, backoff_max_seconds=5.0
    )
    assert [Backoff(settings).delay_for(n) for n in (1, 2, 3, 4)] == [0.5, 2.0, 4.0, 5.0]


def test_breaker_trips_on_more_than_max_restarts_within_the_window() -> None:
    clock = FakeClock()
    breaker = FlapBreaker(PolicySettings(flap_max_restarts=3, flap_window_seconds=10.0), clock)
    assert [breaker.record_restart() for _ in range(3)] == [False, False, False]
    assert breaker.record_restart() is True


def test_breaker_forgets_restarts_that_left_the_window() -> None:
    clock = FakeClock()
    breaker = FlapBreaker(PolicySettings(flap_max_restarts=2, flap_window_seconds=10.0), clock)
    breaker.record_restart()
    breaker.record_restart()
    clock.now += 10.5
    assert breaker.record_restart() is False
    assert breaker.restarts_in_window() == 1


def test_policy_fails_with_cooldown_when_flapping_and_reset_gives_a_fresh_start() -> None:
    clock = FakeClock()
    settings = PolicySettings(flap_max_restarts=2, flap_cooldown_seconds=300.0)
    policy = RestartPolicy(settings, clock)
    first, second = policy.on_exit(0.1), policy.on_exit(0.1)
    assert (first.failed, first.delay, first.attempt) == (False, 0.0, 1)
    assert (second.failed, second.delay, second.attempt) == (False, 0.1, 2)
    third = policy.on_exit(0.1)
    assert third.failed and third.retry_in == 300.0 and third.restarts == 3
    policy.reset()
    again = policy.on_exit(0.1)
    assert not again.failed and again.delay == 0.0


def test_policy_settings_are_read_from_the_supervisor_config_section() -> None:
    from wats.config.models import SupervisorSection

    section = SupervisorSection(flap_max_restarts=4, backoff_base_seconds=0.25)
    settings = PolicySettings.from_config(section)
    assert settings.flap_max_restarts == 4 and settings.backoff_base_seconds == 0.25
    assert settings.flap_cooldown_seconds == section.flap_cooldown_seconds
