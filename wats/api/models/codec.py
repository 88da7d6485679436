"""Reading and writing WSJF: parse a report of either type, dump it as the JSON WATS expects.

Round trip rule: parsing then dumping gives back exactly the fields that were given (nulls
included, ``exclude_unset``), with date-times in their original text, except the output-only
fields below, which are dropped unless asked for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from wats.api.models.steps import STEP_TAGS, StepBase, walk_steps
from wats.api.models.uur import UURReport
from wats.api.models.uut import UUTReport

Report = Annotated[UUTReport | UURReport, Field(discriminator="type")]
"""Either report type, chosen by ``type`` ("T" test, "R" repair)."""

OUTPUT_ONLY_FIELDS: frozenset[str] = frozenset(
    {
        "productName",
        "processName",
        "processCodeFormat",
        "startUTC",
        "origin",
        "assetStats",
        "uur.processName",
    }
)
"""Fields a WATS server writes into its exports and a client never sends (dotted for nested)."""

_REPORT_ADAPTER: TypeAdapter[UUTReport | UURReport] = TypeAdapter(Report)


class ReportFormatError(ValueError):
    """The input is not a JSON object at all (bad JSON, or JSON of the wrong shape)."""


def parse_report(data: dict[str, Any] | str | bytes) -> UUTReport | UURReport:
    """Validate a WSJF report given as a dict or JSON text.

    Raises ``ReportFormatError`` (a ``ValueError``) for text that is not a JSON object, and
    ``pydantic.ValidationError`` naming the offending field for an invalid report
    (``describe_validation_error`` turns it into one readable line).
    """
    if isinstance(data, str | bytes | bytearray):
        try:
            data = json.loads(data)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise ReportFormatError(f"report is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ReportFormatError(f"report must be a JSON object, got {type(data).__name__}")
    return _REPORT_ADAPTER.validate_python(data)


def dump_report(
    report: UUTReport | UURReport, *, include_output_only: bool = False
) -> dict[str, Any]:
    """The JSON-ready WSJF dict of a report.

    Only fields that were set (parsed or given) are written, so a parsed report dumps to what
    was received. Output-only fields are left out unless ``include_output_only`` is true (a server
    returning a stored report wants them; a client sending one does not).
    """
    data: dict[str, Any] = report.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if not include_output_only:
        strip_output_only(data)
    return data


def strip_output_only(data: dict[str, Any]) -> dict[str, Any]:
    """Remove ``OUTPUT_ONLY_FIELDS`` from a WSJF dict in place (and return it)."""
    for path in OUTPUT_ONLY_FIELDS:
        *parents, leaf = path.split(".")
        node: Any = data
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return data


def report_to_json(report: UUTReport | UURReport, *, include_output_only: bool = False) -> str:
    """The WSJF JSON text of a report (compact, UTF-8 characters kept, no NaN)."""
    return json.dumps(
        dump_report(report, include_output_only=include_output_only),
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
    )


def iter_steps(report: UUTReport | UURReport) -> Iterator[StepBase]:
    """Every step of a report depth-first, the root first; a UUR has none."""
    if isinstance(report, UUTReport) and report.root is not None:
        yield from walk_steps(report.root)


def describe_validation_error(error: ValidationError, *, limit: int = 10) -> str:
    """One readable line per problem: ``root.steps.3.numericMeas.0.compOp: Input should be ...``.

    Pydantic puts union tags (``T``, ``NumericLimitStep``, ...) into locations; they are dropped
    so the path reads like the JSON it points into.
    """
    lines = []
    for item in error.errors()[:limit]:
        loc = list(item["loc"])
        if loc and loc[0] in ("T", "R"):
            loc = loc[1:]
        path = ".".join(str(part) for part in loc if part not in STEP_TAGS) or "report"
        lines.append(f"{path}: {item['msg']}")
    more = error.error_count() - limit
    if more > 0:
        lines.append(f"... and {more} more")
    return "; ".join(lines)
