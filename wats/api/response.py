"""``Response``: what the server answered, decoded once.

Services and callers look at one small immutable object instead of an ``httpx.Response``, so the
HTTP library stays an implementation detail and tests can build answers by hand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httpx

__all__ = ["Response"]

_MESSAGE_KEYS = ("message", "Message", "error", "detail", "title")


@dataclass(frozen=True)
class Response:
    """One answer from a WATS server.

    ``data`` is the parsed JSON body, the text when the body is not JSON, or ``None`` when the
    body is empty. ``raw`` keeps the exact bytes for callers that need them.
    """

    status_code: int
    data: Any = None
    headers: httpx.Headers = field(default_factory=httpx.Headers, repr=False)
    raw: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.headers, httpx.Headers):
            object.__setattr__(self, "headers", httpx.Headers(self.headers))

    @classmethod
    def from_body(
        cls, status_code: int, raw: bytes, headers: Mapping[str, str] | httpx.Headers | None = None
    ) -> Response:
        """Decode ``raw`` (JSON if it parses, else text, ``None`` if empty) into a Response."""
        return cls(
            status_code=status_code,
            data=_decode(raw),
            headers=httpx.Headers(headers or {}),
            raw=raw,
        )

    @classmethod
    def from_httpx(cls, response: httpx.Response) -> Response:
        """Wrap an ``httpx.Response`` whose body has been read."""
        return cls.from_body(response.status_code, response.content, response.headers)

    @property
    def is_success(self) -> bool:
        """2xx."""
        return 200 <= self.status_code < 300

    @property
    def is_error(self) -> bool:
        """4xx or 5xx."""
        return self.status_code >= 400

    @property
    def is_not_found(self) -> bool:
        """404."""
        return self.status_code == 404

    @property
    def is_client_error(self) -> bool:
        """4xx: the request was wrong."""
        return 400 <= self.status_code < 500

    @property
    def is_server_error(self) -> bool:
        """5xx: the server had trouble."""
        return 500 <= self.status_code < 600

    @property
    def reason_phrase(self) -> str:
        """The standard phrase for the status ("Not Found"), or "" for unknown codes."""
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

    @property
    def error_message(self) -> str | None:
        """The server's explanation, from the first of ``message``, ``Message``, ``error``,
        ``detail``, ``title`` in a JSON object, or a plain string body; ``None`` if there is none.
        """
        data = self.data
        if isinstance(data, str):
            return data.strip() or None
        if isinstance(data, Mapping):
            for key in _MESSAGE_KEYS:
                value = data.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()
                if isinstance(value, Mapping | list) and value:
                    return json.dumps(value, ensure_ascii=False)
        return None


def _decode(raw: bytes) -> Any:
    if not raw or not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")
