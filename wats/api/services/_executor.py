"""What a service needs from a client: something that executes an ``ApiCall``."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from pydantic import TypeAdapter, ValidationError

from wats.api._client import ApiCall
from wats.api.errors import WatsProtocolError
from wats.api.response import Response

T = TypeVar("T")


class SyncExecutor(Protocol):
    """The sync client face, as seen by sync services."""

    def execute(self, call: ApiCall[T]) -> T: ...


class AsyncExecutor(Protocol):
    """The async client face, as seen by async services."""

    async def execute(self, call: ApiCall[T]) -> T: ...


def parse_as(adapter: TypeAdapter[T], response: Response, what: str) -> T:
    """Validate a successful answer; a shape we cannot read becomes ``WatsProtocolError``.

    Input errors are pydantic ``ValidationError``s raised *before* sending; an unreadable answer
    is the server's fault and is reported as a protocol error naming the endpoint.
    """
    try:
        return adapter.validate_python(response.data)
    except ValidationError as exc:
        raise WatsProtocolError(f"unexpected answer for {what}: {exc}") from exc


def bool_param(value: bool) -> str:
    """WATS query flags are lower-case ``true``/``false``."""
    return "true" if value else "false"


def drop_none(params: dict[str, Any]) -> dict[str, str]:
    """Query parameters without the unset ones, as strings."""
    return {k: v for k, v in params.items() if v is not None}
