"""Test steps: the typed step kinds WATS defines and a catch-all that keeps any other kind.

A step's kind is chosen from its ``stepType`` (several WATS/TestStand names map to one class).
Step types not modelled here become :class:`UnknownStep`, which validates the fields every step
shares and keeps all others verbatim, so e.g. ``WATS_XYGMNLT`` or ``MessagePopup`` steps reach
the server unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Self

from pydantic import Discriminator, Field, Tag, model_validator

from wats.api.models._base import DefaultsDumped, ShortText, Timestamp
from wats.api.models.enums import StepGroup, StepStatus
from wats.api.models.measurements import (
    BooleanMeasurement,
    NumericMeasurement,
    StringMeasurement,
)
from wats.api.models.misc import Attachment, Chart, LoopInfo, SequenceCallInfo


class StepBase(DefaultsDumped):
    """Fields every step shares, whatever its type."""

    step_type: str
    name: ShortText
    status: StepStatus
    group: StepGroup = StepGroup.MAIN
    id: int | None = None
    start: Timestamp | None = None
    tot_time: float | None = None
    error_code: int | None = None
    error_message: str | None = None
    report_text: str | None = None
    loop: LoopInfo | None = None
    chart: Chart | None = None
    attachment: Attachment | None = None
    caused_seq_failure: bool | None = None
    caused_uut_failure: bool | None = Field(default=None, alias="causedUUTFailure")
    ts_guid: str | None = None

    _always_dump = ("step_type", "group")

    @property
    def failed(self) -> bool:
        """True when the step's status counts as a failure (failed, error or terminated)."""
        return self.status in (StepStatus.FAILED, StepStatus.ERROR, StepStatus.TERMINATED)


class SequenceCallStep(StepBase):
    """A call of a sub-sequence; its child steps are in ``steps``."""

    step_type: str = "SequenceCall"
    seq_call: SequenceCallInfo | None = None
    steps: list[Step] = Field(default_factory=list)


class NumericLimitStep(StepBase):
    """A single numeric limit test (``ET_NLT``).

    WATS puts exactly one measurement here; a loop-summary step may carry none, so 0 or 1 is
    accepted and more is refused.
    """

    step_type: str = "ET_NLT"
    numeric_meas: list[NumericMeasurement] | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> Self:
        if self.numeric_meas is not None and len(self.numeric_meas) > 1:
            raise ValueError(
                f"numericMeas of a single numeric limit step holds one measurement, "
                f"got {len(self.numeric_meas)} (use ET_MNLT for several)"
            )
        return self


class MultiNumericLimitStep(StepBase):
    """A multiple numeric limit test (``ET_MNLT``): each measurement carries a name."""

    step_type: str = "ET_MNLT"
    numeric_meas: list[NumericMeasurement] | None = None

    @model_validator(mode="after")
    def _every_measurement_named(self) -> Self:
        for index, meas in enumerate(self.numeric_meas or []):
            if not meas.name:
                raise ValueError(f"numericMeas[{index}] of a multiple numeric step needs a name")
        return self


class PassFailStep(StepBase):
    """A pass/fail test, single (``ET_PFT``) or multiple (``ET_MPFT``)."""

    step_type: str = "ET_PFT"
    boolean_meas: list[BooleanMeasurement] | None = None


class StringValueStep(StepBase):
    """A string value test, single (``ET_SVT``) or multiple (``ET_MSVT``)."""

    step_type: str = "ET_SVT"
    string_meas: list[StringMeasurement] | None = None


class ChartStep(StepBase):
    """A step that only carries a chart (``Chart``)."""

    step_type: str = "Chart"
    chart: Chart


class GenericStep(StepBase):
    """A step without measurements: actions and TestStand flow steps (``Action``, ``NI_*``, ...)."""

    step_type: str = "Action"


ActionStep = GenericStep
"""Alias: an action step is the most common generic step."""


class UnknownStep(StepBase):
    """A step of a type this library does not model, kept verbatim.

    Shared step fields are validated as for any step; every other field (``chart``, ``callExe``,
    ``messagePopup``, measurements of unmodelled kinds, ...) is kept as received.
    """


SEQUENCE_STEP_TYPES = frozenset({"SequenceCall", "WATS_SeqCall"})
NUMERIC_STEP_TYPES = frozenset({"ET_NLT", "NumericLimitTest"})
MULTI_NUMERIC_STEP_TYPES = frozenset({"ET_MNLT", "MultipleNumericLimitTest"})
PASS_FAIL_STEP_TYPES = frozenset({"ET_PFT", "ET_MPFT", "PassFailTest"})
STRING_STEP_TYPES = frozenset({"ET_SVT", "ET_MSVT", "StringValueTest"})
CHART_STEP_TYPES = frozenset({"Chart"})
GENERIC_STEP_TYPES = frozenset(
    {"Action", "GenericTest", "ET_A", "Label", "Statement", "Goto", "Wait"}
)
"""Generic (measurement-less) types besides every ``NI_*`` TestStand flow/instrument type."""

_TAG_BY_TYPE: dict[str, str] = {
    **dict.fromkeys(SEQUENCE_STEP_TYPES, "SequenceCallStep"),
    **dict.fromkeys(NUMERIC_STEP_TYPES, "NumericLimitStep"),
    **dict.fromkeys(MULTI_NUMERIC_STEP_TYPES, "MultiNumericLimitStep"),
    **dict.fromkeys(PASS_FAIL_STEP_TYPES, "PassFailStep"),
    **dict.fromkeys(STRING_STEP_TYPES, "StringValueStep"),
    **dict.fromkeys(CHART_STEP_TYPES, "ChartStep"),
    **dict.fromkeys(GENERIC_STEP_TYPES, "GenericStep"),
}

STEP_CLASSES: tuple[type[StepBase], ...] = (
    SequenceCallStep,
    NumericLimitStep,
    MultiNumericLimitStep,
    PassFailStep,
    StringValueStep,
    ChartStep,
    GenericStep,
    UnknownStep,
)


def step_class_for(step_type: str) -> type[StepBase]:
    """The model class a ``stepType`` is parsed into."""
    tag = _tag_for_type(step_type)
    return next(cls for cls in STEP_CLASSES if cls.__name__ == tag)


def _tag_for_type(step_type: str) -> str:
    if step_type in _TAG_BY_TYPE:
        return _TAG_BY_TYPE[step_type]
    if step_type.startswith("NI_"):
        return "GenericStep"
    return "UnknownStep"


def _step_tag(value: Any) -> str | None:
    # Runs once per step of every parsed report: the common case is one dict lookup.
    if isinstance(value, dict):
        step_type = value["stepType"] if "stepType" in value else value.get("step_type")
        if isinstance(step_type, str):
            tag = _TAG_BY_TYPE.get(step_type)
            return tag if tag is not None else _tag_for_type(step_type)
        return None
    if isinstance(value, StepBase):
        return type(value).__name__
    return None


Step = Annotated[
    Annotated[SequenceCallStep, Tag("SequenceCallStep")]
    | Annotated[NumericLimitStep, Tag("NumericLimitStep")]
    | Annotated[MultiNumericLimitStep, Tag("MultiNumericLimitStep")]
    | Annotated[PassFailStep, Tag("PassFailStep")]
    | Annotated[StringValueStep, Tag("StringValueStep")]
    | Annotated[ChartStep, Tag("ChartStep")]
    | Annotated[GenericStep, Tag("GenericStep")]
    | Annotated[UnknownStep, Tag("UnknownStep")],
    Discriminator(
        _step_tag,
        custom_error_type="missing_step_type",
        custom_error_message="a step needs a string stepType",
    ),
]
"""Any step: the class is chosen from ``stepType``."""

STEP_TAGS: frozenset[str] = frozenset(cls.__name__ for cls in STEP_CLASSES)
"""Union tags that pydantic puts into error locations (hidden by ``describe_validation_error``)."""

SequenceCallStep.model_rebuild()


def walk_steps(step: StepBase) -> Iterator[StepBase]:
    """Yield a step and all its descendants, depth-first, parents before children."""
    yield step
    if isinstance(step, SequenceCallStep):
        for child in step.steps:
            yield from walk_steps(child)
