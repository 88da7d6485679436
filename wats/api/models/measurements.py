"""Measurements carried by test steps: numeric, boolean (pass/fail) and string."""

from __future__ import annotations

from typing import Any, Self

from pydantic import (
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializationInfo,
    field_serializer,
    model_validator,
)

from wats.api.models._base import ShortText, WatsModel
from wats.api.models.enums import NUMERIC_COMP_OPS, STRING_COMP_OPS, CompOp, StepStatus


class _CompOpSpelling(WatsModel):
    """Keeps the operator's spelling as received: WATS accepts mixed case ("IgnoreCase"), and a
    report passed through us must not change."""

    comp_op: CompOp = CompOp.LOG
    _comp_op_text: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_spelling(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        model = handler(data)
        if isinstance(data, dict):
            text = data.get("compOp", data.get("comp_op"))
            if isinstance(text, str):
                model._comp_op_text = text
        return model

    @field_serializer("comp_op")
    def _write_spelling(self, value: CompOp, _info: SerializationInfo) -> str:
        text = self._comp_op_text
        if text is not None and text.upper() == value.value:
            return text
        return value.value


class NumericMeasurement(_CompOpSpelling):
    """One numeric value with its limits (`numericMeas[]`).

    Limits are not checked against the operator here: a report states its own statuses and WATS
    stores them as given. Computing statuses from limits is the builder's job.
    """

    status: StepStatus
    name: ShortText | None = None
    value: float | None = None
    unit: str | None = None
    low_limit: float | None = None
    high_limit: float | None = None
    value_format: str | None = None
    low_limit_format: str | None = None
    high_limit_format: str | None = None

    _always_dump = ("comp_op",)

    @model_validator(mode="after")
    def _numeric_operator(self) -> Self:
        if self.comp_op not in NUMERIC_COMP_OPS:
            raise ValueError(f"compOp {self.comp_op.value} is for strings, not numeric values")
        return self


class BooleanMeasurement(WatsModel):
    """One pass/fail outcome (`booleanMeas[]`)."""

    status: StepStatus
    name: ShortText | None = None
    value: bool | None = None


class StringMeasurement(_CompOpSpelling):
    """One string value compared with a string limit (`stringMeas[]`)."""

    status: StepStatus
    name: ShortText | None = None
    value: str | None = None
    limit: str | None = None

    _always_dump = ("comp_op",)

    @model_validator(mode="after")
    def _string_operator(self) -> Self:
        if self.comp_op not in STRING_COMP_OPS:
            raise ValueError(
                f"compOp {self.comp_op.value} is not a string operator "
                "(use LOG, CASESENSIT or IGNORECASE)"
            )
        return self
