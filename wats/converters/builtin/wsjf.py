"""WSJF: files that already hold WATS reports as JSON (one report, or a JSON list of them).

Nothing to translate, but everything to check: each report is validated by the wats.api models,
so a bad file fails here, with the offending field named, instead of as a 400 from the server.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

from wats.api.models import parse_report
from wats.api.models.codec import describe_validation_error
from wats.converters.base import (
    ConverterBase,
    ConverterContext,
    ConverterResult,
    ConverterSource,
    read_source,
)
from wats.converters.provenance import fill_station_blanks

__all__ = ["WSJFConverter"]

_REPORT_TYPES = ("T", "R")


class WSJFConverter(ConverterBase):
    """WATS JSON (WSJF) reports, one per file or a JSON list of them."""

    name = "wsjf"
    version = "1.0"
    file_patterns = ("*.json",)
    kind = "file"
    source_ids = True  # the report's own id is kept: a repair refers to its test by it

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        """Validate every report in the file; any invalid one fails the whole file, so a
        file is never half delivered."""
        items, problem = _load(source)
        if problem is not None:
            return ConverterResult.fail(problem)
        reports = []
        # station fields a report leaves empty come from the configuration (invariant 7)
        configured = context.station.model_dump()
        for index, item in enumerate(items):
            where = f"report {index}: " if len(items) > 1 else ""
            if not isinstance(item, dict):
                return ConverterResult.fail(
                    f"{where}expected a JSON object, got {type(item).__name__}"
                )
            if item.get("type") not in _REPORT_TYPES:
                return ConverterResult.fail(
                    f'{where}not a WSJF report: \'type\' must be "T" (test) or "R" (repair), '
                    f"got {item.get('type')!r}"
                )
            try:
                reports.append(parse_report(fill_station_blanks(item, configured)))
            except ValidationError as exc:
                return ConverterResult.fail(
                    f"{where}not a valid WSJF report: {describe_validation_error(exc)}"
                )
        return ConverterResult.ok(reports, confidence=1.0)

    def validate(self, source: ConverterSource, context: ConverterContext) -> float:
        """1.0 for valid WSJF; 0.6 for report-shaped JSON the models refuse (so the failure
        message comes from this converter); 0.05 for other JSON; 0 for anything else."""
        items, problem = _load(source)
        if problem is not None or not items:
            return 0.0
        if not all(_looks_like_report(item) for item in items):
            return 0.05
        configured = context.station.model_dump()
        try:
            for item in items:
                parse_report(fill_station_blanks(item, configured))
        except ValidationError:
            return 0.6
        return 1.0


def _load(source: ConverterSource) -> tuple[list[Any], str | None]:
    """The file's reports as a list of JSON values, or a reason it has none."""
    raw, problem = read_source(source)
    if problem is not None:
        return [], problem
    try:
        # pydantic-core's parser first: ~25 % faster on a 100 KB report, on the pipeline's hot
        # path. Anything it refuses is read again by the standard library, which accepts a BOM
        # and UTF-16/32 and words the error message an operator sees.
        data = from_json(raw)
    except ValueError:
        try:
            data = json.loads(raw)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            return [], f"not valid JSON: {exc}"
        except RecursionError:
            return [], "not a WSJF report: the JSON is nested too deeply to read"
    if isinstance(data, dict):
        return [data], None
    if isinstance(data, list):
        if not data:
            return [], "the JSON list holds no reports"
        return data, None
    return [], f"expected a report object or a list of them, got JSON {type(data).__name__}"


def _looks_like_report(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") in _REPORT_TYPES and "pn" in item

