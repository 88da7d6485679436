"""How much of a stored report ``GET /api/Report/Wsjf/{id}`` returns.

WATS answers the fetch with three options: ``detailLevel`` (0 = the least, 7 = the whole report,
the default), ``includeChartdata`` and ``includeAttachments`` (both default true; false leaves
out the chart series data and the attachment payloads, the bulky parts of a report). Virinco
publishes the range and that charts come with levels 6 and up and attachments with 4 and up, not
what each level holds; the levels below are this server's reading, each adding to the one before:

== =================================================================================
0  header: the top-level fields and the ``uut``/``uur`` block
1  + ``subUnits`` (a repair report's failures hang on them), ``miscInfos``, ``assets``
2  + the step tree's sequence calls (``root`` and nested ``SequenceCall`` steps)
3  + every step, without measurements, charts or attachments
4  + measurements with their limits, step attachments and report ``binaryData``
5  + ``additionalData``
6  + charts
7  everything stored (what the station sent)
== =================================================================================

Pure functions over the WSJF dict, so the rules are unit-testable without a server.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

FULL = 7
LEVELS = range(0, FULL + 1)

_SEQUENCE_TYPES = {"SequenceCall", "WATS_SeqCall"}
_MEASUREMENTS = ("numericMeas", "booleanMeas", "stringMeas")
_REPORT_LISTS_FROM = {
    "subUnits": 1,
    "miscInfos": 1,
    "assets": 1,
    "binaryData": 4,
    "additionalData": 5,
}


class DetailError(ValueError):
    """An option value the server cannot honour; the message names the option."""


@dataclass(frozen=True)
class Detail:
    """What to include in a fetched report."""

    level: int = FULL
    chart_data: bool = True
    attachments: bool = True

    @property
    def is_full(self) -> bool:
        """True when nothing is left out (the stored text can be sent as is)."""
        return self.level == FULL and self.chart_data and self.attachments


def parse_level(raw: str | None) -> int:
    """``detailLevel`` as an int in 0..7; absent or empty means the whole report."""
    if raw is None or raw.strip() == "":
        return FULL
    try:
        level = int(raw)
    except ValueError:
        raise DetailError(f"detailLevel: expected a whole number 0-7, got {raw!r}") from None
    if level not in LEVELS:
        raise DetailError(f"detailLevel: expected a whole number 0-7, got {raw!r}")
    return level


def _without_data(series: Any) -> Any:
    if not isinstance(series, dict):
        return series
    return {k: v for k, v in series.items() if k not in ("xdata", "ydata")}


def _trim_step(step: dict[str, Any], detail: Detail) -> dict[str, Any]:
    out = dict(step)
    if detail.level < 4 or not detail.attachments:
        out.pop("attachment", None)
    if detail.level < 4:
        for key in _MEASUREMENTS:
            out.pop(key, None)
    if detail.level < 6:
        out.pop("chart", None)
    elif not detail.chart_data and isinstance(out.get("chart"), dict):
        chart = dict(out["chart"])
        chart["series"] = [_without_data(s) for s in chart.get("series") or []]
        out["chart"] = chart
    children = step.get("steps")
    if isinstance(children, list):
        kept = [
            c
            for c in children
            if isinstance(c, dict) and (detail.level >= 3 or c.get("stepType") in _SEQUENCE_TYPES)
        ]
        out["steps"] = [_trim_step(c, detail) for c in kept]
    return out


def apply_detail(report: dict[str, Any], detail: Detail) -> dict[str, Any]:
    """A copy of the WSJF dict holding only what ``detail`` asks for."""
    if detail.is_full:
        return copy.deepcopy(report)
    out = dict(report)
    for key, first_level in _REPORT_LISTS_FROM.items():
        if detail.level < first_level or (key == "binaryData" and not detail.attachments):
            out.pop(key, None)
    if isinstance(report.get("root"), dict):
        if detail.level < 2:
            out.pop("root")
        else:
            out["root"] = _trim_step(report["root"], detail)
    return out
