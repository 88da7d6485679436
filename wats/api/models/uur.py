"""The repair report (UUR, ``type`` "R"): what failed and what was done; failures hang on
sub-units."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from wats.api.models._base import DefaultsDumped, Timestamp, WatsModel
from wats.api.models.header import ReportBase


class UURInfo(WatsModel):
    """Repair-specific header fields (`uur`). ``processCode`` is the test operation that failed
    (the report's own ``processCode`` is the repair operation)."""

    user: str | None = None
    comment: str | None = None
    exec_time: float | None = None
    process_code: int | None = None
    process_name: str | None = None
    ref_uut: UUID | None = Field(default=None, alias="refUUT")
    confirm_date: Timestamp | None = None
    finalize_date: Timestamp | None = None


class UURReport(ReportBase, DefaultsDumped):
    """A repair report for a unit that failed a test."""

    type: Literal["R"] = "R"
    uur: UURInfo

    _always_dump = ("type",)
