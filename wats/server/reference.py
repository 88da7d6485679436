"""Reference data the server hands out: processes (operation types), levels and product groups.

A station resolves process codes and names against this list, so a test server must offer a
believable set. The default ships as ``reference-data.json`` next to this module; a JSON or TOML
file with the same shape (see ``configs/reference-data.example.toml``) replaces it entirely, so
tests and sites can mirror the operation list of their real WATS server.
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_REFERENCE_RESOURCE = "reference-data.json"


class _WireModel(BaseModel):
    """Base for reference records: WATS's camelCase keys, unknown keys refused (typos surface)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Process(_WireModel):
    """One process (operation type) exactly as ``GET /api/App/Processes`` returns it."""

    code: int
    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    isTestOperation: bool = False
    isRepairOperation: bool = False
    isWipOperation: bool = False
    processIndex: int = 0
    state: int = 1  # 1 = active, 0 = inactive (hidden unless includeInactiveProcesses)

    @property
    def active(self) -> bool:
        """Whether WATS lists the process without ``includeInactiveProcesses``."""
        return self.state == 1


class Level(_WireModel):
    """A level of the organisation tree, as ``GET /api/App/Levels`` returns it."""

    levelId: int
    levelName: str = Field(min_length=1)


class ProductGroup(_WireModel):
    """A product group, as ``GET /api/App/ProductGroups`` returns it."""

    productGroupId: int
    productGroupName: str = Field(min_length=1)


class ReferenceData(_WireModel):
    """The full reference set; process codes must be unique so lookups by code are unambiguous."""

    processes: list[Process] = Field(default_factory=list)
    levels: list[Level] = Field(default_factory=list)
    productGroups: list[ProductGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _codes_are_unique(self) -> ReferenceData:
        codes = [p.code for p in self.processes]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"processes: duplicate process code(s) {duplicates}")
        return self

    def process_by_code(self, code: int) -> Process | None:
        """The process with this code, or None (reports may name codes the server doesn't know)."""
        for process in self.processes:
            if process.code == code:
                return process
        return None

    def select_processes(
        self,
        *,
        include_test: bool = True,
        include_repair: bool = True,
        include_wip: bool = True,
        include_inactive: bool = False,
    ) -> list[Process]:
        """Processes filtered by the ``include*`` flags of ``GET /api/App/Processes``.

        A process is listed when at least one of its kinds is included; a process with no kind
        flag at all is always listed (there is nothing to exclude it by).
        """
        selected: list[Process] = []
        for process in self.processes:
            if not include_inactive and not process.active:
                continue
            kinds = [
                (process.isTestOperation, include_test),
                (process.isRepairOperation, include_repair),
                (process.isWipOperation, include_wip),
            ]
            flagged = [wanted for has_kind, wanted in kinds if has_kind]
            if flagged and not any(flagged):
                continue
            selected.append(process)
        return selected


class ReferenceDataError(ValueError):
    """A reference data file could not be read or does not have the expected shape."""


def default_reference_data() -> ReferenceData:
    """The packaged default set (a sensible list of test, repair and WIP operations)."""
    text = resources.files("wats.server").joinpath(DEFAULT_REFERENCE_RESOURCE).read_text("utf-8")
    return ReferenceData.model_validate(json.loads(text))


def load_reference_data(path: Path) -> ReferenceData:
    """Read a replacement set from a ``.json`` or ``.toml`` file; errors name the file and field."""
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise ReferenceDataError(f"cannot read reference data {path}: {exc.strerror}") from exc
    data: Any
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(raw_bytes.decode("utf-8"))
        else:
            data = json.loads(raw_bytes)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReferenceDataError(
            f"reference data {path} is not valid {path.suffix[1:]}: {exc}"
        ) from exc
    try:
        return ReferenceData.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ReferenceDataError(f"reference data {path}: {problems}") from exc
