"""Line tester CSV results as WATS reports (docs/converters/writing-a-converter.md's example).

The file format, one file per unit tested:

    serial,SN-0001
    part,PCBA-100
    revision,A
    operation,ICT
    VCC,3.31,3.20,3.40,V
    Current,0.52,0.40,0.60,A
"""

from __future__ import annotations

import csv
import io

from pydantic import BaseModel, Field

from wats.api.builder import UUTReportBuilder
from wats.api.models import CompOp
from wats.converters import ConverterBase, ConverterContext, ConverterResult, ConverterSource

HEADER_KEYS = ("serial", "part", "revision", "operation")


class LineCsvArguments(BaseModel):
    """Settings a site may give as ``arguments = { ... }`` in its config."""

    delimiter: str = Field(default=",", min_length=1, max_length=1)
    default_process_code: int = 10  # when the operation's name is not in the reference data


class LineCsvConverter(ConverterBase):
    """Line tester CSV: a header of key,value rows, then name,value,low,high,unit rows."""

    name = "line-csv"
    version = "1.0"
    file_patterns = ("*.csv",)
    Arguments = LineCsvArguments

    def validate(self, source: ConverterSource, context: ConverterContext) -> float:
        first = source.read_text(errors="replace").lstrip().split("\n", 1)[0]
        return 0.9 if first.lower().startswith("serial") else 0.1

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        args = context.arguments
        assert isinstance(args, LineCsvArguments)
        rows = list(csv.reader(io.StringIO(source.read_text()), delimiter=args.delimiter))
        header = {row[0].strip().lower(): row[1].strip() for row in rows[:4] if len(row) >= 2}
        missing = [key for key in HEADER_KEYS if not header.get(key)]
        if missing:
            return ConverterResult.fail(f"header rows missing: {', '.join(missing)}")
        code = context.reference.process_code(header["operation"])
        warnings = []
        if code is None:
            code = args.default_process_code
            warnings.append(f"operation {header['operation']!r} unknown; using process {code}")
        builder = UUTReportBuilder(
            pn=header["part"],
            sn=header["serial"],
            rev=header["revision"],
            process_code=code,
            station_name=context.station.name,
            location=context.station.location,
            purpose=context.station.purpose,
            start=context.now(),
        )
        for line, row in enumerate(rows[4:], start=5):
            if not row:
                continue
            try:
                name, value, low, high, unit = row
                builder.numeric(
                    name, float(value), CompOp.GELE, low=float(low), high=float(high), unit=unit
                )
            except ValueError:
                return ConverterResult.fail(f"line {line}: expected name,value,low,high,unit")
        return ConverterResult.ok(builder.build(), warnings=warnings)
