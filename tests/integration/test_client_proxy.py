"""The client through a real forward proxy on 127.0.0.1, in front of the real embedded server.

The client names the server ``wats.proxy-test.invalid``, a host that never resolves: a request
that reaches the server at all went through the proxy, which forwards everything to the embedded
server. Mode "none" is checked against the server's real loopback URL with the proxy exported in
the environment, so any use of it would show in its count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.forward_proxy import ForwardProxy
from wats.api.builder import ReportBuilder
from wats.api.client import AsyncWatsClient, WatsClient
from wats.api.errors import ProxyAuthenticationError, WatsConnectionError
from wats.api.models import UUTReport
from wats.api.proxy import ProxySettings
from wats.api.retry import RetryPolicy
from wats.server.testing import EmbeddedServer
from wats.workers.connection import ServerTarget, make_client

pytestmark = pytest.mark.timeout(30)

UNRESOLVABLE = "http://wats.proxy-test.invalid"
PROXY_USER = "station-proxy"
PROXY_PASSWORD = "Pr0xy-pa55-word"
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variables from the machine running the tests."""
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.fixture
def proxy(wats_server: EmbeddedServer) -> Iterator[ForwardProxy]:
    with ForwardProxy(("127.0.0.1", wats_server.port)) as running:
        yield running


@pytest.fixture
def auth_proxy(wats_server: EmbeddedServer) -> Iterator[ForwardProxy]:
    credentials = (PROXY_USER, PROXY_PASSWORD)
    with ForwardProxy(("127.0.0.1", wats_server.port), credentials=credentials) as running:
        yield running


def small_report() -> UUTReport:
    builder = ReportBuilder(
        pn="PCBA-100",
        sn="SN-PROXY-1",
        rev="A",
        process_code=10,
        station_name="ICT-01",
        location="Line 1",
        purpose="Production",
        operator="op1",
    )
    with builder.sequence("Power") as power:
        power.pass_fail("Boot", True)
    return builder.build()


def manual(proxy: ForwardProxy, **extra: Any) -> ProxySettings:
    return ProxySettings(mode="manual", host="127.0.0.1", port=proxy.port, **extra)


def client(url: str, server: EmbeddedServer, settings: ProxySettings | None) -> WatsClient:
    retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
    return WatsClient(url, server.token, proxy=settings, retry=retry, timeout=10.0)


def test_requests_through_a_manual_proxy_reach_the_server_and_are_counted(
    wats_server: EmbeddedServer, proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    with client(UNRESOLVABLE, wats_server, manual(proxy)) as api:
        assert api.app.version()
        report_id = api.report.submit_wsjf(small_report())  # a POST body through the proxy
    assert proxy.count == 2
    assert wats_server.report_count() == 1
    assert proxy.requests[1].method == "POST"
    assert report_id
    first = proxy.requests[0]
    assert first.url.startswith(f"{UNRESOLVABLE}/api/")
    # The WATS token travels to the server; the proxy only passes it on.
    assert first.headers["Authorization"] == f"Basic {wats_server.token}"


def test_a_proxy_demanding_credentials_lets_the_right_ones_through(
    wats_server: EmbeddedServer, auth_proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    settings = manual(auth_proxy, username=PROXY_USER, password=PROXY_PASSWORD)
    with client(UNRESOLVABLE, wats_server, settings) as api:
        assert api.app.version()
    assert [seen.forwarded for seen in auth_proxy.requests] == [True]


def test_wrong_proxy_credentials_fail_at_once_with_a_clear_error_and_no_password(
    wats_server: EmbeddedServer,
    auth_proxy: ForwardProxy,
    clean_proxy_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "not-the-Pr0xy-password"
    settings = manual(auth_proxy, username=PROXY_USER, password=wrong)
    caplog.set_level(logging.DEBUG)
    with (
        client(UNRESOLVABLE, wats_server, settings) as api,
        pytest.raises(ProxyAuthenticationError) as caught,
    ):
        api.app.version()
    assert auth_proxy.count == 1, "a 407 must not be retried"
    error = caught.value
    assert error.permanent
    assert "proxy username and password" in str(error)
    for text in (str(error), repr(error), caplog.text):
        assert wrong not in text
        assert PROXY_PASSWORD not in text


def test_missing_proxy_credentials_fail_the_same_way(
    wats_server: EmbeddedServer, auth_proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    with (
        client(UNRESOLVABLE, wats_server, manual(auth_proxy)) as api,
        pytest.raises(ProxyAuthenticationError),
    ):
        api.app.version()
    assert auth_proxy.count == 1


def test_system_mode_uses_the_proxy_named_in_the_environment(
    wats_server: EmbeddedServer, proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
    with client(UNRESOLVABLE, wats_server, ProxySettings(mode="system")) as api:
        assert api.app.version()
    assert proxy.count == 1


def test_system_mode_honours_no_proxy(
    wats_server: EmbeddedServer, proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
    clean_proxy_env.setenv("NO_PROXY", "wats.proxy-test.invalid")
    with (
        client(UNRESOLVABLE, wats_server, ProxySettings(mode="system")) as api,
        pytest.raises(WatsConnectionError),
    ):
        api.app.version()  # direct, so the unresolvable name cannot be reached
    assert proxy.count == 0


def test_mode_none_bypasses_a_proxy_exported_in_the_environment(
    wats_server: EmbeddedServer, proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
    clean_proxy_env.setenv("ALL_PROXY", proxy.url)
    with (
        client(UNRESOLVABLE, wats_server, ProxySettings(mode="none")) as api,
        pytest.raises(WatsConnectionError),
    ):
        api.app.version()
    assert proxy.count == 0


def test_the_loopback_server_is_reached_directly_whatever_the_settings(
    wats_server: EmbeddedServer, proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
    for settings in (manual(proxy), ProxySettings(mode="system")):
        with client(wats_server.url, wats_server, settings) as api:
            assert api.app.version()
    embedded = ServerTarget(wats_server.url, wats_server.token, embedded=True)
    with make_client(embedded, 10.0, proxy=manual(proxy)) as api:
        assert api.app.version()
    assert proxy.count == 0


def test_make_client_sends_a_remote_server_through_the_given_proxy(
    wats_server: EmbeddedServer, proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    target = ServerTarget(UNRESOLVABLE, wats_server.token)
    with make_client(target, 10.0, proxy=manual(proxy)) as api:
        assert api.app.version()
    assert proxy.count == 1


async def test_the_async_client_goes_through_the_proxy_too(
    wats_server: EmbeddedServer, auth_proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    settings = manual(auth_proxy, username=PROXY_USER, password=PROXY_PASSWORD)
    async with AsyncWatsClient(
        UNRESOLVABLE, wats_server.token, proxy=settings, timeout=10.0
    ) as api:
        assert await api.app.version()
    assert auth_proxy.count == 1


def test_an_unreachable_proxy_is_a_connection_error_that_names_no_password(
    wats_server: EmbeddedServer, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    closed = ForwardProxy(("127.0.0.1", wats_server.port))
    port = closed.port
    closed.close()  # nothing listens there any more
    settings = ProxySettings(
        mode="manual", host="127.0.0.1", port=port, username=PROXY_USER, password=PROXY_PASSWORD
    )
    with (
        client(UNRESOLVABLE, wats_server, settings) as api,
        pytest.raises(WatsConnectionError) as caught,
    ):
        api.app.version()
    assert PROXY_PASSWORD not in str(caught.value)
    assert PROXY_PASSWORD not in repr(caught.value.__cause__)
