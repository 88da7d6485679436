"""The header every WSJF report shares, test (UUT) or repair (UUR)."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from wats.api.models._base import Identifier, Text100, Timestamp, WatsModel
from wats.api.models.enums import ReportResult
from wats.api.models.misc import AdditionalData, Asset, BinaryData, MiscInfo
from wats.api.models.units import SubUnit


class ReportBase(WatsModel):
    """Identity, product, station and timing of a report; strict where WATS is strict.

    ``productName``, ``processName``, ``processCodeFormat``, ``startUTC`` and ``origin`` are filled
    in by the server in its exports; they are modelled so a fetched report parses, and
    :func:`dump_report` leaves them out of what a client sends (see ``OUTPUT_ONLY_FIELDS``).
    """

    id: UUID
    pn: Identifier
    sn: Identifier
    rev: Text100
    process_code: int
    result: ReportResult
    machine_name: Text100
    location: Text100
    purpose: Text100
    start: Timestamp

    misc_infos: list[MiscInfo] = Field(default_factory=list)
    sub_units: list[SubUnit] = Field(default_factory=list)
    assets: list[Asset] = Field(default_factory=list)
    binary_data: list[BinaryData] = Field(default_factory=list)
    additional_data: list[AdditionalData] = Field(default_factory=list)

    # Output-only: written by the server, never needed from a client.
    product_name: str | None = None
    process_name: str | None = None
    process_code_format: str | None = None
    start_utc: Timestamp | None = Field(default=None, alias="startUTC")
    origin: str | None = None
    asset_stats: list[dict[str, object]] | None = None
