"""``client.process``: reference data — processes (operation types), levels, product groups.

Reports name their operation by ``processCode``; stations look codes up by name, so the service
offers lookups by code and by (case-insensitive) name on top of the list endpoints.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter, validate_call
from pydantic.alias_generators import to_camel

from wats.api._client import ApiCall
from wats.api.services._executor import (
    AsyncExecutor,
    SyncExecutor,
    bool_param,
    drop_none,
    parse_as,
)

__all__ = [
    "AsyncProcessService",
    "Level",
    "Process",
    "ProcessRepository",
    "ProcessService",
    "ProductGroup",
]


class _WatsModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown keys kept, not dropped."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class Process(_WatsModel):
    """An operation type: test (e.g. 10 "End of line test"), repair or WIP."""

    code: int
    name: str
    description: str | None = None
    is_test_operation: bool = False
    is_repair_operation: bool = False
    is_wip_operation: bool = False
    process_index: int | None = None
    state: int | str | None = None


class Level(_WatsModel):
    """A production level (e.g. PCBA, box build)."""

    level_id: int
    level_name: str


class ProductGroup(_WatsModel):
    """A product group used to organise part numbers."""

    product_group_id: int
    product_group_name: str


_PROCESSES = TypeAdapter(list[Process])
_LEVELS = TypeAdapter(list[Level])
_GROUPS = TypeAdapter(list[ProductGroup])


def find_by_code(processes: list[Process], code: int) -> Process | None:
    """The process with ``code``, or ``None``."""
    return next((p for p in processes if p.code == code), None)


def find_by_name(processes: list[Process], name: str) -> Process | None:
    """The process whose name equals ``name`` ignoring case and outer spaces, or ``None``."""
    wanted = name.strip().casefold()
    return next((p for p in processes if p.name.strip().casefold() == wanted), None)


class ProcessRepository:
    """Endpoints ``/api/App/Processes``, ``/api/App/Levels``, ``/api/App/ProductGroups``."""

    @validate_call
    def processes(
        self,
        include_test_operations: bool | None = None,
        include_repair_operations: bool | None = None,
        include_wip_operations: bool | None = None,
        include_inactive_processes: bool | None = None,
    ) -> ApiCall[list[Process]]:
        """``GET /api/App/Processes``; unset flags are left to the server's defaults."""
        flags = {
            "includeTestOperations": include_test_operations,
            "includeRepairOperations": include_repair_operations,
            "includeWipOperations": include_wip_operations,
            "includeInactiveProcesses": include_inactive_processes,
        }
        params = drop_none({k: None if v is None else bool_param(v) for k, v in flags.items()})
        return ApiCall(
            "GET",
            "/api/App/Processes",
            params=params or None,
            parse=lambda r: parse_as(_PROCESSES, r, "GET /api/App/Processes"),
        )

    def levels(self) -> ApiCall[list[Level]]:
        """``GET /api/App/Levels``."""
        return ApiCall(
            "GET", "/api/App/Levels", parse=lambda r: parse_as(_LEVELS, r, "GET /api/App/Levels")
        )

    def product_groups(self) -> ApiCall[list[ProductGroup]]:
        """``GET /api/App/ProductGroups``."""
        return ApiCall(
            "GET",
            "/api/App/ProductGroups",
            parse=lambda r: parse_as(_GROUPS, r, "GET /api/App/ProductGroups"),
        )


@validate_call
def _check_code(code: int) -> int:
    return code


_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


@validate_call
def _check_name(name: _Name) -> str:
    return name


class ProcessService:
    """Reference data, blocking."""

    def __init__(self, http: SyncExecutor, repository: ProcessRepository | None = None) -> None:
        self._http = http
        self._repo = repository or ProcessRepository()

    def get_processes(
        self,
        *,
        include_test_operations: bool | None = None,
        include_repair_operations: bool | None = None,
        include_wip_operations: bool | None = None,
        include_inactive_processes: bool | None = None,
    ) -> list[Process]:
        """All processes the server knows, filtered by the ``include_*`` flags."""
        call = self._repo.processes(
            include_test_operations=include_test_operations,
            include_repair_operations=include_repair_operations,
            include_wip_operations=include_wip_operations,
            include_inactive_processes=include_inactive_processes,
        )
        return self._http.execute(call)

    def get_levels(self) -> list[Level]:
        """All production levels."""
        return self._http.execute(self._repo.levels())

    def get_product_groups(self) -> list[ProductGroup]:
        """All product groups."""
        return self._http.execute(self._repo.product_groups())

    def get_process_by_code(self, code: int) -> Process | None:
        """The process (active or not, any kind) with ``code``, or ``None``."""
        code = _check_code(code)
        return find_by_code(self._everything(), code)

    def get_process_by_name(self, name: str) -> Process | None:
        """The process named ``name`` (case-insensitive), or ``None``."""
        name = _check_name(name)
        return find_by_name(self._everything(), name)

    def _everything(self) -> list[Process]:
        return self.get_processes(
            include_test_operations=True,
            include_repair_operations=True,
            include_wip_operations=True,
            include_inactive_processes=True,
        )


class AsyncProcessService:
    """Reference data, awaited."""

    def __init__(self, http: AsyncExecutor, repository: ProcessRepository | None = None) -> None:
        self._http = http
        self._repo = repository or ProcessRepository()

    async def get_processes(
        self,
        *,
        include_test_operations: bool | None = None,
        include_repair_operations: bool | None = None,
        include_wip_operations: bool | None = None,
        include_inactive_processes: bool | None = None,
    ) -> list[Process]:
        """All processes the server knows, filtered by the ``include_*`` flags."""
        call = self._repo.processes(
            include_test_operations=include_test_operations,
            include_repair_operations=include_repair_operations,
            include_wip_operations=include_wip_operations,
            include_inactive_processes=include_inactive_processes,
        )
        return await self._http.execute(call)

    async def get_levels(self) -> list[Level]:
        """All production levels."""
        return await self._http.execute(self._repo.levels())

    async def get_product_groups(self) -> list[ProductGroup]:
        """All product groups."""
        return await self._http.execute(self._repo.product_groups())

    async def get_process_by_code(self, code: int) -> Process | None:
        """The process (active or not, any kind) with ``code``, or ``None``."""
        code = _check_code(code)
        return find_by_code(await self._everything(), code)

    async def get_process_by_name(self, name: str) -> Process | None:
        """The process named ``name`` (case-insensitive), or ``None``."""
        name = _check_name(name)
        return find_by_name(await self._everything(), name)

    async def _everything(self) -> list[Process]:
        return await self.get_processes(
            include_test_operations=True,
            include_repair_operations=True,
            include_wip_operations=True,
            include_inactive_processes=True,
        )
