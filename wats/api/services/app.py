"""``client.app``: server information. ``version()`` doubles as the ping (WATS has no health
endpoint), so it is never cached: a cached ping would hide an outage.
"""

from __future__ import annotations

from wats.api._client import ApiCall
from wats.api.errors import WatsProtocolError
from wats.api.response import Response
from wats.api.services._executor import AsyncExecutor, SyncExecutor

__all__ = ["AppRepository", "AppService", "AsyncAppService"]


def _read_version(response: Response) -> str:
    data = response.data
    if isinstance(data, str) and data.strip():
        return data.strip()
    raise WatsProtocolError(f"GET /api/App/Version: expected a JSON string, got {data!r}")


class AppRepository:
    """Endpoints under ``/api/App`` that are not reference data."""

    def version(self) -> ApiCall[str]:
        """``GET /api/App/Version`` → the version string."""
        return ApiCall("GET", "/api/App/Version", parse=_read_version)


class AppService:
    """Server information, blocking."""

    def __init__(self, http: SyncExecutor, repository: AppRepository | None = None) -> None:
        self._http = http
        self._repo = repository or AppRepository()

    def version(self) -> str:
        """The server's version (e.g. ``"24.1.0"``); raises if the server is unreachable."""
        return self._http.execute(self._repo.version())


class AsyncAppService:
    """Server information, awaited."""

    def __init__(self, http: AsyncExecutor, repository: AppRepository | None = None) -> None:
        self._http = http
        self._repo = repository or AppRepository()

    async def version(self) -> str:
        """The server's version (e.g. ``"24.1.0"``); raises if the server is unreachable."""
        return await self._http.execute(self._repo.version())
