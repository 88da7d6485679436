"""Every built-in converter against every format: each claims its own files and no other's.

``wats-supervisor convert`` without ``--converter`` and a watch folder shared by several
formats both rely on ``validate()`` telling the formats apart, so the whole matrix is checked:
the owner of a sample must be the most confident by a clear margin, everyone else must stay low.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wats.api.station import Station
from wats.converters import ConverterContext, ConverterSource, builtin_converters

OWNER_BY_FOLDER = {
    "wsjf": "wsjf",
    "wsxf": "wsxf",
    "atml": "atml",
    "teststand_xml": "teststand-xml",
    "openhtf": "openhtf",
}
OTHERS_AT_MOST = 0.1
OWNER_AT_LEAST = 0.8

CSV_TEXT = "Serial Number: SN-1\nPart Number: P-1\n\nName,Value,Low,High\nVCC,3.3,3.2,3.4\n"


def _context() -> ConverterContext:
    return ConverterContext(station=Station(name="bench", location="lab", purpose="test"))


def _all_sources(samples_dir: Path, tmp_path: Path) -> list[tuple[Path, str]]:
    found = [
        (path, owner)
        for folder, owner in OWNER_BY_FOLDER.items()
        for path in sorted((samples_dir / folder).iterdir())
        if path.is_file()
    ]
    csv_file = tmp_path / "line.csv"
    csv_file.write_text(CSV_TEXT, encoding="utf-8")
    return [*found, (csv_file, "csv")]


def test_every_sample_is_claimed_by_its_own_converter_and_by_no_other(
    samples_dir: Path, tmp_path: Path
) -> None:
    converters = {name: cls() for name, cls in builtin_converters().items()}
    sources = _all_sources(samples_dir, tmp_path)
    assert len(sources) >= 13  # every shared sample, plus the CSV
    problems = []
    for path, owner in sources:
        scores = {
            name: conv.validate(ConverterSource(path), _context())
            for name, conv in converters.items()
        }
        if scores[owner] < OWNER_AT_LEAST:
            problems.append(f"{path.name}: its own converter {owner} gives {scores[owner]:.2f}")
        for name, score in scores.items():
            if name != owner and score > OTHERS_AT_MOST:
                problems.append(f"{path.name}: {name} claims it with {score:.2f}")
    assert problems == []


@pytest.mark.parametrize("name", ["wsjf", "wsxf", "atml", "teststand-xml", "openhtf", "csv"])
def test_every_built_in_converts_its_own_format_to_reports_the_models_accept(
    name: str, samples_dir: Path, tmp_path: Path
) -> None:
    from wats.api.models import dump_report, parse_report

    conv = builtin_converters()[name]()
    mine = [p for p, owner in _all_sources(samples_dir, tmp_path) if owner == name]
    assert mine
    for path in mine:
        result = conv.convert(ConverterSource(path), _context())
        assert result.success, (path.name, result.message)
        assert result.reports
        for report in result.reports:
            assert parse_report(dump_report(report)).sn == report.sn
