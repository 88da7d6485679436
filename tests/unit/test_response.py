"""``Response``: decoding, status predicates and finding the server's message."""

from __future__ import annotations

import httpx
import pytest

from wats.api.response import Response


def test_json_body_is_parsed() -> None:
    response = Response.from_body(200, b'{"a": 1}', {"Content-Type": "application/json"})
    assert response.data == {"a": 1}
    assert response.raw == b'{"a": 1}'


def test_non_json_body_is_kept_as_text() -> None:
    assert Response.from_body(500, b"Internal trouble").data == "Internal trouble"


def test_empty_body_gives_none() -> None:
    assert Response.from_body(204, b"").data is None
    assert Response.from_body(200, b"  \n").data is None


def test_json_string_body_is_a_python_string() -> None:
    assert Response.from_body(200, b'"24.1.0"').data == "24.1.0"


def test_headers_are_case_insensitive() -> None:
    response = Response(200, headers={"Retry-After": "3"})
    assert response.headers["retry-after"] == "3"


def test_from_httpx_keeps_status_headers_and_bytes() -> None:
    answer = httpx.Response(404, json={"message": "no such report"}, headers={"X-A": "b"})
    response = Response.from_httpx(answer)
    assert response.status_code == 404
    assert response.headers["x-a"] == "b"
    assert response.data == {"message": "no such report"}


@pytest.mark.parametrize(
    ("status", "success", "error", "client", "server", "not_found"),
    [
        (200, True, False, False, False, False),
        (204, True, False, False, False, False),
        (302, False, False, False, False, False),
        (400, False, True, True, False, False),
        (404, False, True, True, False, True),
        (503, False, True, False, True, False),
    ],
)
def test_status_predicates(
    status: int, success: bool, error: bool, client: bool, server: bool, not_found: bool
) -> None:
    response = Response(status)
    assert response.is_success is success
    assert response.is_error is error
    assert response.is_client_error is client
    assert response.is_server_error is server
    assert response.is_not_found is not_found


@pytest.mark.parametrize("key", ["message", "Message", "error", "detail", "title"])
def test_error_message_is_found_under_each_known_key(key: str) -> None:
    assert Response(400, data={key: "sn is too long"}).error_message == "sn is too long"


def test_error_message_prefers_message_over_title() -> None:
    data = {"title": "Bad Request", "message": "pn: required"}
    assert Response(400, data=data).error_message == "pn: required"


def test_error_message_from_plain_string_body() -> None:
    assert Response.from_body(400, b"report is not JSON").error_message == "report is not JSON"


def test_error_message_is_none_when_the_body_says_nothing() -> None:
    assert Response(500).error_message is None
    assert Response(500, data={"other": 1}).error_message is None
    assert Response(500, data=[1, 2]).error_message is None
