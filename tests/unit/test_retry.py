"""Retry policy: what is retried, how long we wait, and Retry-After in both forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from wats.api.errors import (
    RateLimitError,
    WatsConnectionError,
    WatsError,
    WatsProtocolError,
    WatsTimeoutError,
    error_from_response,
)
from wats.api.response import Response
from wats.api.retry import RetryPolicy, parse_retry_after


def no_jitter(**kwargs: object) -> RetryPolicy:
    return RetryPolicy(jitter=0.0, **kwargs)  # type: ignore[arg-type]


def test_defaults_are_three_attempts_base_one_second_cap_thirty() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.base_delay, policy.max_delay) == (3, 1.0, 30.0)


def test_backoff_doubles_and_is_capped() -> None:
    policy = no_jitter(max_attempts=10, base_delay=1.0, max_delay=30.0)
    assert [policy.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_jitter_scales_the_delay_down_by_at_most_the_jitter_fraction() -> None:
    assert RetryPolicy(jitter=0.5, random=lambda: 0.0).backoff(3) == 4.0
    assert RetryPolicy(jitter=0.5, random=lambda: 1.0).backoff(3) == 2.0
    assert RetryPolicy(jitter=0.5, random=lambda: 0.5).backoff(3) == 3.0


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    assert RetryPolicy().is_retryable(error_from_response(Response(status)))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 501])
def test_other_statuses_are_never_retried(status: int) -> None:
    policy = RetryPolicy(max_attempts=5)
    assert policy.next_delay(1, error_from_response(Response(status))) is None


def test_connection_errors_and_timeouts_are_retried() -> None:
    policy = RetryPolicy()
    assert policy.is_retryable(WatsConnectionError("refused"))
    assert policy.is_retryable(WatsTimeoutError("read timeout"))


def test_protocol_and_plain_errors_are_not_retried() -> None:
    policy = RetryPolicy()
    assert not policy.is_retryable(WatsProtocolError("no id"))
    assert not policy.is_retryable(WatsError("?"))


def test_gives_up_after_max_attempts() -> None:
    policy = no_jitter(max_attempts=3)
    error = WatsConnectionError("down")
    assert policy.next_delay(1, error) == 1.0
    assert policy.next_delay(2, error) == 2.0
    assert policy.next_delay(3, error) is None
    assert RetryPolicy.never().next_delay(1, error) is None


def test_retry_after_seconds_replaces_the_backoff() -> None:
    error = error_from_response(Response(429, headers={"Retry-After": "12"}))
    assert no_jitter().next_delay(1, error) == 12.0


def test_retry_after_is_capped() -> None:
    error = RateLimitError("slow down", retry_after=3600.0)
    assert RetryPolicy(max_retry_after=45.0).next_delay(1, error) == 45.0


def test_stats_count_retries_and_their_delays() -> None:
    policy = no_jitter()
    policy.next_delay(1, WatsConnectionError("x"))
    policy.next_delay(2, WatsConnectionError("x"))
    policy.next_delay(3, WatsConnectionError("x"))  # gives up: not counted
    assert policy.stats.total_retries == 2
    assert policy.stats.total_retry_time == 3.0
    policy.reset_stats()
    assert policy.stats.total_retries == 0


def test_parse_retry_after_reads_delta_seconds() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0.0


def test_parse_retry_after_reads_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=20), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(20.0)


def test_parse_retry_after_treats_a_past_date_as_now() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now - timedelta(seconds=20), usegmt=True)
    assert parse_retry_after(header, now=now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "nan"])
def test_parse_retry_after_ignores_nonsense(value: str | None) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base_delay": -1.0}, {"jitter": 1.5}])
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
