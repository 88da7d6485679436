"""Sub-units (the parts a unit is built from) and the repair failures recorded on them."""

from __future__ import annotations

from pydantic import Field

from wats.api.models._base import Identifier, WatsModel


class Failure(WatsModel):
    """A failure found during repair (UUR), attached to the sub-unit it was found on."""

    category: str
    code: str
    comment: str | None = None
    com_ref: str | None = None
    func_block: str | None = None
    ref_step_id: int | None = None
    ref_step_name: str | None = None
    art_number: str | None = None
    art_rev: str | None = None
    art_vendor: str | None = None
    art_description: str | None = None


class SubUnit(WatsModel):
    """A part inside the unit under test (`subUnits[]`); in a UUR the main unit is ``idx`` 0."""

    pn: Identifier
    sn: Identifier
    rev: str | None = None
    part_type: str | None = None
    idx: int | None = None
    parent_idx: int | None = None
    position: int | None = None
    failures: list[Failure] | None = Field(default=None)
