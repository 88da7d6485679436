"""Error mapping: every status gets its type, its message, and the permanent/transient split."""

from __future__ import annotations

import pytest

from wats.api.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitError,
    ServerError,
    WatsConnectionError,
    WatsError,
    WatsHTTPError,
    WatsProtocolError,
    WatsTimeoutError,
    error_from_response,
)
from wats.api.response import Response


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
    ],
)
def test_each_status_maps_to_its_error_type(status: int, cls: type[WatsHTTPError]) -> None:
    error = error_from_response(Response(status), "GET", "/api/App/Version")
    assert type(error) is cls
    assert error.status_code == status
    assert isinstance(error, WatsError)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_client_errors_are_permanent(status: int) -> None:
    error = error_from_response(Response(status))
    assert error.permanent
    assert not error.transient


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_throttling_and_server_errors_are_transient(status: int) -> None:
    error = error_from_response(Response(status))
    assert error.transient
    assert not error.permanent


def test_connection_and_timeout_errors_are_transient() -> None:
    assert WatsConnectionError("refused").transient
    assert WatsTimeoutError("slow").transient
    assert isinstance(WatsTimeoutError("slow"), WatsConnectionError)


def test_protocol_error_is_permanent() -> None:
    assert WatsProtocolError("no id").permanent


def test_unlisted_client_status_is_a_permanent_http_error() -> None:
    error = error_from_response(Response(418))
    assert type(error) is WatsHTTPError
    assert error.permanent


def test_error_carries_the_servers_message_with_method_and_path() -> None:
    response = Response(400, data={"message": "pn: must not contain '*'"})
    error = error_from_response(response, "POST", "/api/Report/WSJF")
    assert error.server_message == "pn: must not contain '*'"
    assert error.method == "POST"
    assert error.path == "/api/Report/WSJF"
    assert "POST /api/Report/WSJF" in str(error)
    assert "pn: must not contain '*'" in str(error)
    assert error.response is response


def test_error_without_server_message_falls_back_to_reason_phrase() -> None:
    error = error_from_response(Response(404), "GET", "/api/Report/Wsjf/x")
    assert error.server_message is None
    assert "HTTP 404: Not Found" in str(error)


def test_rate_limit_error_carries_retry_after_in_seconds() -> None:
    error = error_from_response(Response(429, headers={"Retry-After": "7"}))
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7.0


def test_rate_limit_error_without_header_has_no_retry_after() -> None:
    error = error_from_response(Response(429))
    assert isinstance(error, RateLimitError)
    assert error.retry_after is None


def test_error_text_never_contains_request_headers() -> None:
    response = Response(401, data={"message": "bad token"}, headers={"X-Echo": "secret-token"})
    error = error_from_response(response, "GET", "/api/App/Version")
    assert "secret-token" not in str(error)
    assert "secret-token" not in repr(error)
