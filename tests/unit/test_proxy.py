"""Proxy settings: validation, the httpx arguments they give, and a password that never shows."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from wats.api.auth import Secret, basic_token
from wats.api.client import AsyncWatsClient, WatsClient
from wats.api.errors import ProxyAuthenticationError, WatsConnectionError
from wats.api.proxy import ProxySettings, is_loopback_url, proxy_arguments
from wats.api.retry import RetryPolicy
from wats.workers.connection import ServerTarget, make_client

pytestmark = pytest.mark.timeout(10)

PASSWORD = "pr0xy-S3cret!"
TOKEN = basic_token("api", "pw")
REMOTE = "https://company.wats.example"


def manual(**extra: object) -> ProxySettings:
    return ProxySettings(mode="manual", host="proxy.example.com", port=3128, **extra)


def test_no_settings_and_mode_none_mean_direct_without_the_environment() -> None:
    assert proxy_arguments(None) == {"proxy": None, "trust_env": False}
    assert proxy_arguments(ProxySettings()) == {"proxy": None, "trust_env": False}


def test_system_mode_lets_httpx_read_the_proxy_environment() -> None:
    assert proxy_arguments(ProxySettings(mode="system"), REMOTE) == {
        "proxy": None,
        "trust_env": True,
    }


def test_manual_mode_gives_an_httpx_proxy_and_ignores_the_environment() -> None:
    args = proxy_arguments(manual(), REMOTE)
    assert args["trust_env"] is False
    assert isinstance(args["proxy"], httpx.Proxy)
    assert str(args["proxy"].url) == "http://proxy.example.com:3128"
    assert args["proxy"].auth is None


def test_manual_credentials_travel_as_auth_never_inside_the_proxy_url() -> None:
    proxy = proxy_arguments(manual(username="station", password=PASSWORD), REMOTE)["proxy"]
    assert proxy.auth == ("station", PASSWORD)
    assert PASSWORD not in str(proxy.url)
    assert "station" not in str(proxy.url)
    assert PASSWORD not in repr(proxy)


def test_an_ipv6_proxy_host_is_bracketed_in_the_url() -> None:
    settings = ProxySettings(mode="manual", host="[fd00::1]", port=8080)
    assert settings.host == "fd00::1"
    assert settings.url == "http://[fd00::1]:8080"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:9000/api", "http://127.5.6.7"],
)
def test_a_loopback_server_is_always_reached_directly(url: str) -> None:
    assert is_loopback_url(url)
    for settings in (manual(), ProxySettings(mode="system")):
        assert proxy_arguments(settings, url) == {"proxy": None, "trust_env": False}


def test_a_remote_server_is_not_mistaken_for_loopback() -> None:
    assert not is_loopback_url("https://127.example.com")
    assert not is_loopback_url("http://10.0.0.1")


def test_manual_mode_without_host_or_port_is_refused_with_what_to_set() -> None:
    with pytest.raises(ValidationError, match="needs both host and port"):
        ProxySettings(mode="manual", host="proxy.example.com")
    with pytest.raises(ValidationError, match="needs both host and port"):
        ProxySettings(mode="manual", port=3128)


@pytest.mark.parametrize(
    "host",
    ["http://proxy:3128", "user:pw@proxy", "proxy/path", "proxy:3128", "pro xy"],
)
def test_a_host_with_a_scheme_credentials_path_or_port_is_refused(host: str) -> None:
    with pytest.raises(ValidationError, match="host name or IP address only"):
        ProxySettings(mode="manual", host=host, port=3128)


def test_a_password_without_a_username_and_a_username_with_a_colon_are_refused() -> None:
    with pytest.raises(ValidationError, match="needs a username"):
        manual(password=PASSWORD)
    with pytest.raises(ValidationError, match="must not contain ':'"):
        manual(username="a:b", password=PASSWORD)


@pytest.mark.parametrize(
    "bad",
    [{"port": None}, {"username": None}, {"username": "a:b"}, {"host": "http://x"}],
)
def test_a_validation_error_never_shows_the_password(bad: dict[str, object]) -> None:
    given: dict[str, object] = {
        "mode": "manual",
        "host": "proxy.example.com",
        "port": 3128,
        "username": "station",
        "password": PASSWORD,
        **bad,
    }
    with pytest.raises(ValidationError) as caught:
        ProxySettings(**given)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)
    assert PASSWORD not in repr(caught.value.errors(include_input=False))
    # Given as a Secret (as a prompt should), not even the raw input can show it.
    with pytest.raises(ValidationError) as wrapped:
        ProxySettings(**{**given, "password": Secret(PASSWORD)})
    assert PASSWORD not in repr(wrapped.value.errors())


def test_a_plain_string_password_is_wrapped_in_a_secret_at_once() -> None:
    settings = manual(username="station", password=PASSWORD)
    assert isinstance(settings.password, Secret)
    assert settings.password.reveal() == PASSWORD


def test_the_password_never_appears_in_repr_str_dump_or_description() -> None:
    settings = manual(username="station", password=PASSWORD)
    shown = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
        settings.describe(),
    ]
    assert all(PASSWORD not in text for text in shown)
    assert "station" in settings.describe()


def test_the_client_takes_settings_and_they_decide_proxy_and_trust_env() -> None:
    settings = manual(username="station", password=PASSWORD)
    with WatsClient(REMOTE, TOKEN, proxy=settings, trust_env=True) as client:
        assert client.trust_env is False
        assert isinstance(client.proxy, httpx.Proxy)
        assert client.proxy_settings is settings
        assert PASSWORD not in repr(client)
        assert PASSWORD not in repr(client.proxy)


async def test_the_async_client_takes_the_same_settings() -> None:
    async with AsyncWatsClient(REMOTE, TOKEN, proxy=ProxySettings(mode="system")) as client:
        assert client.trust_env is True
        assert client.proxy is None


def test_existing_callers_passing_a_url_or_trust_env_keep_their_behaviour() -> None:
    with WatsClient(REMOTE, TOKEN, proxy="http://proxy.example.com:3128") as client:
        assert client.proxy == "http://proxy.example.com:3128"
        assert client.trust_env is True
        assert client.proxy_settings is None


def test_make_client_ignores_any_proxy_for_the_embedded_server() -> None:
    target = ServerTarget("http://127.0.0.1:8080", TOKEN, embedded=True)
    client = make_client(target, 5.0, proxy=manual())
    with client:
        assert client.proxy is None
        assert client.trust_env is False


def test_make_client_passes_the_settings_for_a_remote_server() -> None:
    client = make_client(ServerTarget(REMOTE, TOKEN), 5.0, proxy=manual())
    with client:
        assert isinstance(client.proxy, httpx.Proxy)
        assert client.trust_env is False


def test_make_client_without_settings_keeps_reading_the_environment() -> None:
    with make_client(ServerTarget(REMOTE, TOKEN), 5.0) as client:
        assert client.trust_env is True


def _counting(
    answer: httpx.Response | Exception,
) -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return seen, httpx.MockTransport(handler)


def _client(transport: httpx.MockTransport) -> WatsClient:
    policy = RetryPolicy(max_attempts=5, jitter=0.0, sleep=lambda _s: None)
    return WatsClient(REMOTE, TOKEN, retry=policy, transport=transport)


def test_a_407_answer_is_a_permanent_proxy_error_and_is_not_retried() -> None:
    seen, transport = _counting(httpx.Response(407, text="proxy authentication required"))
    with _client(transport) as client, pytest.raises(ProxyAuthenticationError) as caught:
        client.app.version()
    assert len(seen) == 1
    assert caught.value.permanent
    assert caught.value.status_code == 407
    assert "proxy username and password" in str(caught.value)


def test_a_407_to_connect_is_a_permanent_proxy_error_too() -> None:
    error = httpx.ProxyError("407 Proxy Authentication Required")
    seen, transport = _counting(error)
    with _client(transport) as client, pytest.raises(ProxyAuthenticationError) as caught:
        client.app.version()
    assert len(seen) == 1
    assert "407" in str(caught.value)


def test_other_proxy_failures_stay_transient_connection_errors() -> None:
    seen, transport = _counting(httpx.ProxyError("502 Bad Gateway"))
    with _client(transport) as client, pytest.raises(WatsConnectionError):
        client.app.version()
    assert len(seen) == 5
