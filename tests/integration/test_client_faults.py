"""Retries and outages against the real embedded server's fault injection.

Retry waits are observed through the policy's ``sleep`` hook. Where a test needs the server to
recover "while the client waits", the hook heals the server: deterministic, and no test sleeps to
synchronise.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from wats.api import (
    CompOp,
    ReportBuilder,
    RetryPolicy,
    ServerError,
    UUTReport,
    WatsClient,
    WatsConnectionError,
    WatsTimeoutError,
)
from wats.server.testing import EmbeddedServer


class HealingSleep:
    """A retry sleep that records each wait and runs ``heal`` the first time (the outage ends)."""

    def __init__(self, heal: Callable[[], None] | None = None, real: bool = False) -> None:
        self.heal = heal
        self.real = real
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.real:
            time.sleep(seconds)  # the wait under test, not synchronisation
        if self.heal is not None:
            heal, self.heal = self.heal, None
            heal()


def client_for(server: EmbeddedServer, sleep: HealingSleep, **kwargs: object) -> WatsClient:
    policy = RetryPolicy(base_delay=0.01, max_delay=0.05, sleep=sleep)
    return WatsClient(server.url, server.token, retry=policy, **kwargs)  # type: ignore[arg-type]


def report(report_id: str | None = None) -> UUTReport:
    builder = ReportBuilder(
        pn="PCBA-200",
        sn="SN-RETRY",
        rev="B",
        process_code=10,
        station_name="FCT-02",
        location="Line 2",
        purpose="Production",
        report_id=report_id,
    )
    builder.numeric("Current", 0.5, CompOp.LT, high=1.0, low=1.0, unit="A")
    return builder.build()


def test_429_with_retry_after_is_honoured(wats_server: EmbeddedServer) -> None:
    wats_server.set_faults(throttle_next=1, retry_after_seconds=1)
    sleep = HealingSleep(real=True)
    started = time.monotonic()
    with client_for(wats_server, sleep) as client:
        assert client.app.version()
        assert client.retry_policy.stats.total_retries == 1
    assert sleep.waits == [1.0]
    assert time.monotonic() - started >= 1.0


def test_submit_failing_with_503_is_retried_and_lands_exactly_one_report(
    wats_server: EmbeddedServer,
) -> None:
    wats_server.set_faults(offline=True)  # every request answered 503 ...
    sleep = HealingSleep(heal=wats_server.clear_faults)  # ... until the client's first wait
    the_report = report()
    with client_for(wats_server, sleep) as client:
        report_id = client.report.submit_wsjf(the_report)
        assert client.retry_policy.stats.total_retries == 1
    assert report_id == str(the_report.id)
    assert wats_server.report_count() == 1


def test_retried_submit_after_the_report_already_landed_keeps_one_copy(
    wats_server: EmbeddedServer,
) -> None:
    # The answer to a stored submit can be lost; the retry resends the same id. Model that
    # directly: submit, then submit again through a 503 and a retry.
    report_id = str(uuid.uuid4())
    sleep = HealingSleep(heal=wats_server.clear_faults)
    with client_for(wats_server, sleep) as client:
        client.report.submit_wsjf(report(report_id))
        wats_server.set_faults(error_503_probability=1.0)
        client.report.submit_wsjf(report(report_id))
    assert sleep.waits, "the second submit should have been retried"
    assert wats_server.report_count() == 1


def test_outage_longer_than_the_retries_raises_a_transient_error_then_recovers(
    wats_server: EmbeddedServer,
) -> None:
    wats_server.set_faults(offline=True)
    sleep = HealingSleep()
    with client_for(wats_server, sleep) as client:
        with pytest.raises(ServerError) as caught:
            client.report.submit_wsjf(report())
        assert caught.value.transient
        assert caught.value.status_code == 503
        assert len(sleep.waits) == 2  # 3 attempts
        assert wats_server.report_count() == 0
        wats_server.clear_faults()
        client.report.submit_wsjf(report())
    assert wats_server.report_count() == 1


def test_refused_connections_are_retried_until_the_server_listens_again(
    wats_server: EmbeddedServer,
) -> None:
    wats_server.refuse_connections()
    sleep = HealingSleep(heal=wats_server.accept_connections)
    with client_for(wats_server, sleep) as client:
        assert client.report.submit_wsjf(report())
        assert client.retry_policy.stats.total_retries >= 1
    assert wats_server.report_count() == 1


def test_unreachable_server_raises_connection_error(wats_server: EmbeddedServer) -> None:
    sleep = HealingSleep()
    with wats_server.unreachable(), client_for(wats_server, sleep) as client:
        with pytest.raises(WatsConnectionError) as caught:
            client.app.version()
        assert caught.value.transient
        assert len(sleep.waits) == 2


def test_slow_server_raises_timeout_error(wats_server: EmbeddedServer) -> None:
    wats_server.set_faults(latency_ms=1000)
    with (
        WatsClient(
            wats_server.url, wats_server.token, timeout=0.2, retry=RetryPolicy.never()
        ) as client,
        pytest.raises(WatsTimeoutError) as caught,
    ):
        client.app.version()
    assert caught.value.transient
