"""Closed vocabularies of the WSJF format.

WATS rejects values outside these sets, so they are enums: a typo fails validation at the
station instead of at the server.
"""

from __future__ import annotations

from enum import StrEnum


class ReportType(StrEnum):
    """The `type` letter that tells a test report from a repair report."""

    UUT = "T"
    UUR = "R"


class ReportResult(StrEnum):
    """Overall outcome of a report (`result`)."""

    PASSED = "P"
    FAILED = "F"
    DONE = "D"
    ERROR = "E"
    TERMINATED = "T"


class StepStatus(StrEnum):
    """Outcome of one step or measurement (`status`)."""

    PASSED = "P"
    FAILED = "F"
    SKIPPED = "S"
    DONE = "D"
    ERROR = "E"
    TERMINATED = "T"


class StepGroup(StrEnum):
    """TestStand step group a step ran in (`group`)."""

    SETUP = "S"
    MAIN = "M"
    CLEANUP = "C"


class CompOp(StrEnum):
    """Comparison operator of a measurement (`compOp`).

    Single-limit operators compare the value with `lowLimit` alone; range operators use both
    limits. See `wats.api.builder.evaluate_numeric` for the exact semantics.
    """

    LOG = "LOG"
    EQ = "EQ"
    NE = "NE"
    LT = "LT"
    LE = "LE"
    GT = "GT"
    GE = "GE"
    EQT = "EQT"
    GTLT = "GTLT"
    GTLE = "GTLE"
    GELT = "GELT"
    GELE = "GELE"
    LTGT = "LTGT"
    LTGE = "LTGE"
    LEGT = "LEGT"
    LEGE = "LEGE"
    CASESENSIT = "CASESENSIT"
    IGNORECASE = "IGNORECASE"

    @classmethod
    def _missing_(cls, value: object) -> CompOp | None:
        # Real WATS exports spell some operators in mixed case ("IgnoreCase").
        if isinstance(value, str):
            return cls.__members__.get(value.upper())
        return None


#: Operators that make sense for string measurements.
STRING_COMP_OPS: frozenset[CompOp] = frozenset({CompOp.LOG, CompOp.CASESENSIT, CompOp.IGNORECASE})

#: Operators that make sense for numeric measurements.
NUMERIC_COMP_OPS: frozenset[CompOp] = frozenset(CompOp) - {CompOp.CASESENSIT, CompOp.IGNORECASE}


class ChartType(StrEnum):
    """Axis scaling of a chart (`chartType`)."""

    LINE = "Line"
    LINE_LOG_X = "LineLogX"
    LINE_LOG_Y = "LineLogY"
    LINE_LOG_XY = "LineLogXY"
