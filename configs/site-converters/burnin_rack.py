"""Burn-in rack runs as WATS test reports: an example of a site's own *folder* converter.

The rack writes one folder per run and, when the run is over, a ``COMPLETE.marker`` in it (the
watcher waits for the marker, so a half-written run is never taken). Used by configs/hub.toml
(``converter = "burnin_rack.py:BurnInRackConverter"``, ``kind = "folder"``); tested by
tests/unit/test_site_converter_examples.py. The folder:

    run-0042/
        unit.txt          the unit, one "key: value" per line
        chamber.csv       one CSV log per logged channel (any name ending .csv) ...
        psu.csv
        COMPLETE.marker   written last by the rack (its content is ignored)

``unit.txt`` keys (case-insensitive; blank lines and lines starting with # are ignored):

    serial: SN-0042          required
    part: PSU-200            required
    revision: B              required
    operator: night shift    optional
    started: 2024-05-01T22:00:00+02:00   optional (ISO 8601); else the time of conversion
    rack: R3                 optional, kept as misc info
    slot: 12                 optional, kept as misc info

Each ``*.csv`` log has the header row ``cycle,name,value,low,high,unit`` and one row per
measurement; ``low`` / ``high`` may be empty (logged only, no limit). For example:

    cycle,name,value,low,high,unit
    1,Case temperature,84.9,80,90,C
    1,Output voltage,12.02,11.8,12.2,V

The report: one sequence per log file (named after the file, e.g. "chamber"), one numeric step
per row, named "<name> #<cycle>"; a step outside its limits fails the unit. With the argument
``cycles_expected``, a run whose logs stop before that cycle gets a failing "Cycles completed"
step (the rack stopped early). Temperatures (unit ``C`` or ``F``) are reported in
``temperature_unit``, converting value and limits when the rack logged the other one.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from wats.api.builder import UUTReportBuilder
from wats.api.models import CompOp
from wats.converters import ConverterBase, ConverterContext, ConverterResult, ConverterSource

UNIT_FILE = "unit.txt"
LOG_COLUMNS = ("cycle", "name", "value", "low", "high", "unit")
REQUIRED_KEYS = ("serial", "part", "revision")


class BurnInArguments(BaseModel):
    """``arguments = { ... }`` of a burn-in converter entry."""

    temperature_unit: Literal["C", "F"] = "C"
    cycles_expected: int = Field(default=0, ge=0)  # 0: do not check how far the run got
    operation: str = "Burn-in"  # process name looked up in the server's reference data
    default_process_code: int = 90  # used (with a warning) when the name is not known


class BurnInRackConverter(ConverterBase):
    """Burn-in rack run folders (unit.txt + one CSV log per channel) as one UUT report."""

    name = "burnin-rack"
    version = "1.0"
    kind = "folder"
    file_patterns = ("*.csv", UNIT_FILE)
    Arguments = BurnInArguments

    def validate(self, source: ConverterSource, context: ConverterContext) -> float:
        names = {p.name.lower() for p in source.files()}
        has_logs = any(name.endswith(".csv") for name in names)
        return 0.9 if UNIT_FILE in names and has_logs else 0.1

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        args = context.arguments
        assert isinstance(args, BurnInArguments)
        files = {p.relative_to(source.path).as_posix(): p for p in source.files()}
        if UNIT_FILE not in files:
            return ConverterResult.fail(f"{source.name}: no {UNIT_FILE} in the run folder")
        unit, problem = _read_unit(files[UNIT_FILE])
        if problem:
            return ConverterResult.fail(f"{UNIT_FILE}: {problem}")
        logs = sorted(name for name in files if name.lower().endswith(".csv"))
        if not logs:
            return ConverterResult.fail(f"{source.name}: no *.csv logs in the run folder")

        warnings: list[str] = []
        code = context.reference.process_code(args.operation)
        if code is None:
            code = args.default_process_code
            warnings.append(f"operation {args.operation!r} unknown; using process {code}")
        start = context.now()
        if unit.get("started"):
            try:
                start = datetime.fromisoformat(unit["started"])
            except ValueError:
                return ConverterResult.fail(f"{UNIT_FILE}: started is not an ISO 8601 time")
        builder = UUTReportBuilder(
            pn=unit["part"],
            sn=unit["serial"],
            rev=unit["revision"],
            process_code=code,
            station_name=context.station.name,
            location=context.station.location,
            purpose=context.station.purpose,
            operator=unit.get("operator"),
            start=start,
        )
        for key in ("rack", "slot"):
            if unit.get(key):
                builder.misc_info(key.capitalize(), unit[key])

        last_cycle = 0
        for name in logs:
            sequence = builder.sequence(Path(name).stem)
            rows, problem = _read_log(files[name])
            if problem:
                return ConverterResult.fail(f"{name}: {problem}")
            for cycle, step, value, low, high, unit_text in rows:
                value, low, high, unit_text = _in_unit(
                    value, low, high, unit_text, args.temperature_unit
                )
                op = CompOp.GELE if low is not None and high is not None else CompOp.LOG
                if op is CompOp.LOG:
                    low = high = None
                sequence.numeric(
                    f"{step} #{cycle}", value, op, low=low, high=high, unit=unit_text or None
                )
                last_cycle = max(last_cycle, cycle)
        if args.cycles_expected:
            completed = last_cycle >= args.cycles_expected
            builder.pass_fail("Cycles completed", completed)
            if not completed:
                warnings.append(
                    f"the run stopped after cycle {last_cycle} of {args.cycles_expected}"
                )
        return ConverterResult.ok(builder.build(), warnings=warnings)


def _read_unit(path: Path) -> tuple[dict[str, str], str]:
    """The ``key: value`` lines of unit.txt, keys lower-cased; or a problem to report."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, colon, value = text.partition(":")
        if not colon:
            return {}, f"line {number}: expected 'key: value'"
        values[key.strip().lower()] = value.strip()
    missing = [key for key in REQUIRED_KEYS if not values.get(key)]
    if missing:
        return {}, f"missing {', '.join(missing)}"
    return values, ""


Row = tuple[int, str, float, float | None, float | None, str]


def _read_log(path: Path) -> tuple[list[Row], str]:
    """The rows of one CSV log; or a problem naming the line."""
    reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    header = [cell.strip().lower() for cell in next(reader, [])]
    if tuple(header) != LOG_COLUMNS:
        return [], f"line 1: expected the header {','.join(LOG_COLUMNS)}"
    rows: list[Row] = []
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        try:
            cycle, name, value, low, high, unit = (cell.strip() for cell in cells)
            rows.append((int(cycle), name, float(value), _number(low), _number(high), unit))
        except ValueError:
            return [], f"line {number}: expected cycle,name,value,low,high,unit with numbers"
    return rows, ""


def _number(text: str) -> float | None:
    return float(text) if text else None


def _in_unit(
    value: float, low: float | None, high: float | None, unit: str, wanted: str
) -> tuple[float, float | None, float | None, str]:
    """Convert a temperature logged in C or F to ``wanted``; anything else is unchanged."""
    if unit not in ("C", "F") or unit == wanted:
        return value, low, high, unit

    def convert(x: float | None) -> float | None:
        if x is None:
            return None
        return round(x * 9 / 5 + 32, 3) if wanted == "F" else round((x - 32) * 5 / 9, 3)

    converted = convert(value)
    assert converted is not None
    return converted, convert(low), convert(high), wanted
