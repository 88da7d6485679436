"""Tokens: how they are built, sent, and kept out of anything printable."""

from __future__ import annotations

import base64
import logging
import pickle

import httpx
import pytest

from wats.api.auth import BasicTokenAuth, Secret, basic_token, redact_headers
from wats.api.client import AsyncWatsClient, WatsClient

TOKEN = basic_token("station-7", "s3cr3t-passw0rd")


def test_basic_token_is_base64_of_user_colon_password() -> None:
    assert base64.b64decode(basic_token("api", "p:w")).decode() == "api:p:w"


@pytest.mark.parametrize("username", ["", "a:b"])
def test_basic_token_refuses_unusable_usernames(username: str) -> None:
    with pytest.raises(ValueError):
        basic_token(username, "pw")


def test_secret_never_shows_its_value() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2"


def test_secret_survives_pickling() -> None:
    assert pickle.loads(pickle.dumps(Secret("x"))).reveal() == "x"


def test_auth_flow_adds_the_basic_header() -> None:
    request = httpx.Request("GET", "http://wats.test/api/App/Version")
    flow = BasicTokenAuth(TOKEN).auth_flow(request)
    assert next(flow).headers["Authorization"] == f"Basic {TOKEN}"


def test_empty_token_is_refused() -> None:
    with pytest.raises(ValueError):
        BasicTokenAuth("  ")


def test_redact_headers_blanks_credentials_only() -> None:
    headers = {"Authorization": f"Basic {TOKEN}", "User-Agent": "x", "proxy-authorization": "p"}
    redacted = redact_headers(headers)
    assert redacted == {
        "Authorization": "[redacted]",
        "User-Agent": "x",
        "proxy-authorization": "[redacted]",
    }


def test_client_repr_does_not_contain_the_token() -> None:
    with WatsClient("http://wats.test", TOKEN) as client:
        text = repr(client) + repr(client.__dict__) + repr(vars(client._auth))
    assert TOKEN not in text


async def test_async_client_repr_does_not_contain_the_token() -> None:
    async with AsyncWatsClient("http://wats.test", TOKEN) as client:
        assert TOKEN not in repr(client) + repr(client.__dict__)


def test_token_never_appears_in_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Basic {TOKEN}"
        return httpx.Response(503, json={"message": "busy"})

    from wats.api.errors import ServerError
    from wats.api.retry import RetryPolicy

    policy = RetryPolicy(max_attempts=2, sleep=lambda _: None)
    caplog.set_level(logging.DEBUG)
    with (
        WatsClient(
            "http://wats.test", TOKEN, transport=httpx.MockTransport(refuse), retry=policy
        ) as client,
        pytest.raises(ServerError) as caught,
    ):
        client.app.version()
    assert caplog.records, "the retry should have been logged"
    assert TOKEN not in caplog.text
    assert TOKEN not in str(caught.value) + repr(caught.value)
    assert TOKEN not in repr(caught.value.__cause__) + repr(caught.value.__context__)
