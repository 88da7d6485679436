"""WSJF report models (pydantic v2): test (UUT) and repair (UUR) reports, steps, measurements.

Read and write reports with :func:`parse_report`, :func:`dump_report` and :func:`report_to_json`;
build them in code with :class:`wats.api.builder.UUTReportBuilder`; convert the XML twin with
:mod:`wats.api.wsxf`. See docs/reports.md.
"""

from wats.api.models._base import FORBIDDEN_IDENTIFIER_CHARS, WatsDateTime, WatsModel
from wats.api.models.codec import (
    OUTPUT_ONLY_FIELDS,
    Report,
    ReportFormatError,
    describe_validation_error,
    dump_report,
    iter_steps,
    parse_report,
    report_to_json,
    strip_output_only,
)
from wats.api.models.enums import (
    ChartType,
    CompOp,
    ReportResult,
    ReportType,
    StepGroup,
    StepStatus,
)
from wats.api.models.header import ReportBase
from wats.api.models.measurements import (
    BooleanMeasurement,
    NumericMeasurement,
    StringMeasurement,
)
from wats.api.models.misc import (
    AdditionalData,
    Asset,
    Attachment,
    BinaryData,
    Chart,
    ChartSeries,
    LoopInfo,
    MiscInfo,
    SequenceCallInfo,
)
from wats.api.models.steps import (
    ActionStep,
    ChartStep,
    GenericStep,
    MultiNumericLimitStep,
    NumericLimitStep,
    PassFailStep,
    SequenceCallStep,
    Step,
    StepBase,
    StringValueStep,
    UnknownStep,
    step_class_for,
    walk_steps,
)
from wats.api.models.units import Failure, SubUnit
from wats.api.models.uur import UURInfo, UURReport
from wats.api.models.uut import UUTInfo, UUTReport

__all__ = [
    "FORBIDDEN_IDENTIFIER_CHARS",
    "OUTPUT_ONLY_FIELDS",
    "ActionStep",
    "AdditionalData",
    "Asset",
    "Attachment",
    "BinaryData",
    "BooleanMeasurement",
    "Chart",
    "ChartSeries",
    "ChartStep",
    "ChartType",
    "CompOp",
    "Failure",
    "GenericStep",
    "LoopInfo",
    "MiscInfo",
    "MultiNumericLimitStep",
    "NumericLimitStep",
    "NumericMeasurement",
    "PassFailStep",
    "Report",
    "ReportBase",
    "ReportFormatError",
    "ReportResult",
    "ReportType",
    "SequenceCallInfo",
    "SequenceCallStep",
    "Step",
    "StepBase",
    "StepGroup",
    "StepStatus",
    "StringMeasurement",
    "StringValueStep",
    "SubUnit",
    "UURInfo",
    "UURReport",
    "UUTInfo",
    "UUTReport",
    "UnknownStep",
    "WatsDateTime",
    "WatsModel",
    "describe_validation_error",
    "dump_report",
    "iter_steps",
    "parse_report",
    "report_to_json",
    "step_class_for",
    "strip_output_only",
    "walk_steps",
]
