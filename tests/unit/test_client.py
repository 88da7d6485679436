"""The client core and its two faces, with httpx.MockTransport as the seam (no network)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

import wats
from wats.api._client import normalize_base_url
from wats.api.auth import basic_token
from wats.api.client import AsyncWatsClient, WatsClient
from wats.api.errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ServerError,
    WatsConnectionError,
    WatsHTTPError,
    WatsTimeoutError,
)
from wats.api.ratelimit import RateLimiter
from wats.api.retry import RetryPolicy

TOKEN = basic_token("api", "pw")
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A scripted server: answers in order, remembers each request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)

    async def async_(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_client(server: Handler, sleeps: Sleeps | None = None, **kwargs: object) -> WatsClient:
    sleeps = sleeps or Sleeps()
    policy = RetryPolicy(jitter=0.0, sleep=sleeps, async_sleep=sleeps.async_)
    options: dict[str, object] = {"retry": policy, **kwargs}
    return WatsClient("http://wats.test", TOKEN, transport=httpx.MockTransport(server), **options)  # type: ignore[arg-type]


def make_async_client(
    server: Handler, sleeps: Sleeps | None = None, **kwargs: object
) -> AsyncWatsClient:
    sleeps = sleeps or Sleeps()
    policy = RetryPolicy(jitter=0.0, sleep=sleeps, async_sleep=sleeps.async_)
    options: dict[str, object] = {"retry": policy, **kwargs}
    return AsyncWatsClient(
        "http://wats.test", TOKEN, transport=httpx.MockTransport(server), **options
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "given",
    [
        "https://company.wats.com",
        "https://company.wats.com/",
        "https://company.wats.com/api",
        "https://company.wats.com/api/",
        "https://company.wats.com/API",
        "  https://company.wats.com//  ",
    ],
)
def test_base_url_is_normalised_to_the_server_root(given: str) -> None:
    assert normalize_base_url(given) == "https://company.wats.com"


def test_base_url_keeps_a_path_prefix_below_the_host() -> None:
    assert normalize_base_url("https://host/wats/api/") == "https://host/wats"


@pytest.mark.parametrize("bad", ["company.wats.com", "ftp://x", ""])
def test_base_url_without_http_scheme_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        normalize_base_url(bad)


def test_requests_carry_basic_auth_user_agent_and_absolute_api_path() -> None:
    server = Recorder(httpx.Response(200, json="24.1.0"))
    with make_client(server) as client:
        assert client.app.version() == "24.1.0"
    request = server.requests[0]
    assert request.url == "http://wats.test/api/App/Version"
    assert request.headers["Authorization"] == f"Basic {TOKEN}"
    assert request.headers["User-Agent"] == f"wats-supervisor/{wats.__version__}"


def test_base_url_with_api_suffix_does_not_double_the_prefix() -> None:
    server = Recorder(httpx.Response(200, json="1"))
    client = WatsClient("http://wats.test/api/", TOKEN, transport=httpx.MockTransport(server))
    with client:
        client.app.version()
    assert server.requests[0].url.path == "/api/App/Version"


def test_timeout_verify_and_proxy_settings_reach_the_client() -> None:
    client = WatsClient(
        "https://wats.test", TOKEN, timeout=7.5, verify=False, proxy="http://proxy.local:3128"
    )
    with client:
        assert client._http.timeout == httpx.Timeout(7.5)
        assert client.verify is False
        pools = [type(t._pool).__name__ for t in client._http._mounts.values()]  # type: ignore[union-attr]
        assert pools and all(name == "HTTPProxy" for name in pools)


def test_context_manager_closes_the_client() -> None:
    with make_client(Recorder(httpx.Response(200))) as client:
        assert not client.is_closed
    assert client.is_closed


def test_503_is_retried_with_backoff_then_succeeds() -> None:
    sleeps = Sleeps()
    server = Recorder(httpx.Response(503), httpx.Response(503), httpx.Response(200, json="24.1.0"))
    with make_client(server, sleeps) as client:
        assert client.app.version() == "24.1.0"
        assert client.retry_policy.stats.total_retries == 2
    assert len(server.requests) == 3
    assert sleeps.calls == [1.0, 2.0]


def test_gives_up_after_three_attempts_with_the_last_error() -> None:
    server = Recorder(httpx.Response(500, json={"message": "db down"}))
    with make_client(server) as client, pytest.raises(ServerError, match="db down") as caught:
        client.app.version()
    assert len(server.requests) == 3
    assert caught.value.transient


def test_429_waits_for_retry_after() -> None:
    sleeps = Sleeps()
    server = Recorder(
        httpx.Response(429, headers={"Retry-After": "4"}), httpx.Response(200, json="1")
    )
    with make_client(server, sleeps) as client:
        client.app.version()
    assert sleeps.calls == [4.0]


def test_429_that_persists_raises_rate_limit_error() -> None:
    server = Recorder(httpx.Response(429, headers={"Retry-After": "1"}))
    with make_client(server) as client, pytest.raises(RateLimitError) as caught:
        client.app.version()
    assert caught.value.retry_after == 1.0


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (409, WatsHTTPError),
    ],
)
def test_permanent_errors_are_raised_at_once_without_retry(
    status: int, cls: type[Exception]
) -> None:
    sleeps = Sleeps()
    server = Recorder(httpx.Response(status, json={"message": "nope"}))
    with make_client(server, sleeps) as client, pytest.raises(cls, match="nope"):
        client.app.version()
    assert len(server.requests) == 1
    assert sleeps.calls == []


def test_connection_error_is_retried_then_raised_as_wats_connection_error() -> None:
    server = Recorder(httpx.ConnectError("connection refused"))
    with make_client(server) as client, pytest.raises(WatsConnectionError) as caught:
        client.app.version()
    assert len(server.requests) == 3
    assert "GET /api/App/Version" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_timeout_becomes_wats_timeout_error() -> None:
    server = Recorder(httpx.ReadTimeout("too slow"))
    with make_client(server) as client, pytest.raises(WatsTimeoutError):
        client.app.version()


def test_outage_then_recovery_succeeds_within_the_attempts() -> None:
    server = Recorder(httpx.ConnectError("refused"), httpx.Response(200, json="24.1.0"))
    with make_client(server) as client:
        assert client.app.version() == "24.1.0"


def test_call_with_retry_false_is_tried_once() -> None:
    server = Recorder(httpx.Response(503))
    with make_client(server) as client, pytest.raises(ServerError):
        client.request("GET", "/api/App/Version", retry=False)
    assert len(server.requests) == 1


def test_every_attempt_takes_a_rate_limiter_slot() -> None:
    limiter = RateLimiter(100, 60.0)
    server = Recorder(httpx.Response(503), httpx.Response(200, json="1"))
    with make_client(server, rate_limiter=limiter) as client:
        client.app.version()
    assert limiter.stats.total_requests == 2


def test_low_level_request_returns_a_response() -> None:
    server = Recorder(httpx.Response(200, json={"x": 1}))
    with make_client(server) as client:
        response = client.request("get", "api/App/Whatever", params={"a": "b"})
    assert response.data == {"x": 1}
    assert server.requests[0].method == "GET"
    assert str(server.requests[0].url) == "http://wats.test/api/App/Whatever?a=b"


def test_redirect_is_an_error_that_points_at_the_base_url() -> None:
    server = Recorder(httpx.Response(302, headers={"Location": "https://wats.test/login"}))
    with make_client(server) as client, pytest.raises(WatsHTTPError, match="check base_url"):
        client.app.version()


async def test_async_client_mirrors_the_sync_one() -> None:
    sleeps = Sleeps()
    server = Recorder(httpx.Response(503), httpx.Response(200, json="24.1.0"))
    async with make_async_client(server, sleeps) as client:
        assert await client.app.version() == "24.1.0"
        assert client.retry_policy.stats.total_retries == 1
    assert client.is_closed
    assert sleeps.calls == [1.0]
    assert server.requests[0].headers["Authorization"] == f"Basic {TOKEN}"


async def test_async_client_raises_typed_errors() -> None:
    server = Recorder(httpx.Response(401, json={"Message": "bad token"}))
    async with make_async_client(server) as client:
        with pytest.raises(AuthenticationError, match="bad token"):
            await client.app.version()
    assert len(server.requests) == 1


async def test_async_connection_error_is_wrapped() -> None:
    server = Recorder(httpx.ConnectError("refused"))
    async with make_async_client(server) as client:
        with pytest.raises(WatsConnectionError):
            await client.request("GET", "/api/App/Version")
