"""The test report (UUT, ``type`` "T"): header, test information and the step tree."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from wats.api.models._base import DefaultsDumped, WatsModel
from wats.api.models.header import ReportBase
from wats.api.models.steps import SequenceCallStep


class UUTInfo(WatsModel):
    """Test-specific header fields (`uut`): operator, execution time, fixture, batch, errors."""

    user: str | None = None
    comment: str | None = None
    exec_time: float | None = None
    fixture_id: str | None = None
    test_socket_index: int | None = None
    batch_sn: str | None = Field(default=None, alias="batchSN")
    batch_fail_count: int | None = None
    batch_loop_index: int | None = None
    error_code: int | None = None
    error_message: str | None = None
    step_id_caused_uut_failure: int | None = Field(default=None, alias="stepIdCausedUUTFailure")


class UUTReport(ReportBase, DefaultsDumped):
    """A test report: what was tested, where, and every step with its measurements."""

    type: Literal["T"] = "T"
    uut: UUTInfo | None = None
    root: SequenceCallStep | None = None

    _always_dump = ("type",)
