"""Measurements carried by test steps: numeric, boolean (pass/fail) and string."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import AliasChoices, Field, SerializationInfo, field_serializer, model_validator
from pydantic.json_schema import SkipJsonSchema

from wats.api.models._base import ShortText, WatsModel
from wats.api.models.enums import NUMERIC_COMP_OPS, STRING_COMP_OPS, CompOp, StepStatus


class _ComparedMeasurement(WatsModel):
    """A measurement with a comparison operator (numeric or string).

    Keeps the operator's spelling as received: WATS accepts mixed case ("IgnoreCase"), and a
    report passed through us must not change. The spelling is a second, never-dumped field read
    from the same ``compOp`` key, so pydantic-core fills it without any Python code per
    measurement. ``compOp`` is always written out (WATS needs it) and must be an operator of the
    measurement's kind; both are settled by one validator, the only Python call per measurement.
    """

    comp_op: CompOp = CompOp.LOG
    comp_op_text: SkipJsonSchema[Any] = Field(
        default=None,
        validation_alias=AliasChoices("compOp", "comp_op"),
        exclude=True,
        repr=False,
    )

    _allowed_ops: ClassVar[frozenset[CompOp]] = frozenset(CompOp)
    _wrong_op_message: ClassVar[str] = "compOp {} is not allowed here"

    @model_validator(mode="after")
    def _check_operator(self) -> Self:
        if self.comp_op not in self._allowed_ops:
            raise ValueError(self._wrong_op_message.format(self.comp_op.value))
        self.__pydantic_fields_set__.add("comp_op")
        return self

    @field_serializer("comp_op")
    def _write_spelling(self, value: CompOp, _info: SerializationInfo) -> str:
        text = self.comp_op_text
        if isinstance(text, str) and text != value.value and text.upper() == value.value:
            return str(text)
        return value.value


class NumericMeasurement(_ComparedMeasurement):
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

    _allowed_ops = NUMERIC_COMP_OPS
    _wrong_op_message = "compOp {} is for strings, not numeric values"


class BooleanMeasurement(WatsModel):
    """One pass/fail outcome (`booleanMeas[]`)."""

    status: StepStatus
    name: ShortText | None = None
    value: bool | None = None


class StringMeasurement(_ComparedMeasurement):
    """One string value compared with a string limit (`stringMeas[]`)."""

    status: StepStatus
    name: ShortText | None = None
    value: str | None = None
    limit: str | None = None

    _allowed_ops = STRING_COMP_OPS
    _wrong_op_message = "compOp {} is not a string operator (use LOG, CASESENSIT or IGNORECASE)"
