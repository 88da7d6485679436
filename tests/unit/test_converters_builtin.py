"""The built-in WSJF and WSXF converters on the genuine samples and on bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from wats.api.models import UURReport, UUTReport, dump_report
from wats.api.station import Station
from wats.converters import ConverterContext, ConverterResult, ConverterSource
from wats.converters.builtin import WSJFConverter, WSXFConverter

CONTEXT = ConverterContext(station=Station(name="ICT-01", location="Line 4", purpose="Test"))
WSXF_NS = "http://wats.virinco.com/schemas/WATS/Report/wsxf"


def _convert(converter: WSJFConverter | WSXFConverter, path: Path) -> ConverterResult:
    return converter.convert(ConverterSource(path), CONTEXT)


def _confidence(converter: WSJFConverter | WSXFConverter, path: Path) -> float:
    return converter.validate(ConverterSource(path), CONTEXT)


@pytest.mark.parametrize(
    "name", ["new_report_example.json", "uur_example.json", "uut-wsjf-export.json"]
)
def test_wsjf_converts_every_sample_to_one_valid_report(samples_dir: Path, name: str) -> None:
    path = samples_dir / "wsjf" / name
    result = _convert(WSJFConverter(), path)
    assert result.success, result.message
    assert result.confidence == 1.0
    [report] = result.reports
    assert isinstance(report, UURReport if name.startswith("uur") else UUTReport)
    assert str(report.id) == json.loads(path.read_text(encoding="utf-8"))["id"]


def test_wsjf_reads_a_json_list_of_reports(samples_dir: Path, tmp_path: Path) -> None:
    first = json.loads((samples_dir / "wsjf" / "new_report_example.json").read_text("utf-8"))
    second = json.loads((samples_dir / "wsjf" / "uur_example.json").read_text("utf-8"))
    path = tmp_path / "two.json"
    path.write_text(json.dumps([first, second]), encoding="utf-8")
    result = _convert(WSJFConverter(), path)
    assert result.success, result.message
    assert [type(r) for r in result.reports] == [UUTReport, UURReport]


def test_wsxf_converts_the_sample_to_the_same_report_as_its_wsjf_twin(samples_dir: Path) -> None:
    result = _convert(WSXFConverter(), samples_dir / "wsxf" / "uut-wsxf-export.xml")
    assert result.success, result.message
    [report] = result.reports
    twin = _convert(WSJFConverter(), samples_dir / "wsjf" / "uut-wsjf-export.json").reports[0]
    assert report.id == twin.id
    assert (report.sn, report.pn, report.result) == (twin.sn, twin.pn, twin.result)


def test_wsxf_reads_every_report_of_a_reports_document(samples_dir: Path, tmp_path: Path) -> None:
    text = (samples_dir / "wsxf" / "uut-wsxf-export.xml").read_text(encoding="utf-8")
    start, end = text.index("<Report "), text.index("</Report>") + len("</Report>")
    second = text[start:end].replace('SN="FATTest-325"', 'SN="FATTest-326"')
    path = tmp_path / "two.xml"
    path.write_text(text[:end] + second + text[end:], encoding="utf-8")
    result = _convert(WSXFConverter(), path)
    assert result.success, result.message
    assert [r.sn for r in result.reports] == ["FATTest-325", "FATTest-326"]


BAD_JSON = {
    "empty.json": (b"", "empty"),
    "blank.json": (b"  \n ", "empty"),
    "garbage.json": (bytes(range(256)) * 4, "not valid JSON"),
    "truncated.json": (b'{"type": "T", "pn": "A", "sn": ', "not valid JSON"),
    "number.json": (b"42", "got JSON int"),
    "empty-list.json": (b"[]", "holds no reports"),
    "list-of-junk.json": (b'[7, {"type": "T"}]', "report 0: expected a JSON object"),
    "other.json": (b'{"hello": "world"}', "'type' must be"),
    "invalid.json": (b'{"type": "T", "id": "x"}', "not a valid WSJF report"),
}


@pytest.mark.parametrize("name", sorted(BAD_JSON))
def test_wsjf_fails_bad_input_cleanly(tmp_path: Path, name: str) -> None:
    data, message = BAD_JSON[name]
    path = tmp_path / name
    path.write_bytes(data)
    result = _convert(WSJFConverter(), path)
    assert not result.success
    assert result.reports == [] and result.confidence == 0.0
    assert message in result.message


def test_wsjf_names_the_invalid_field(samples_dir: Path, tmp_path: Path) -> None:
    data = json.loads((samples_dir / "wsjf" / "new_report_example.json").read_text("utf-8"))
    data["result"] = "maybe"
    path = tmp_path / "bad-result.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = _convert(WSJFConverter(), path)
    assert not result.success
    assert "result" in result.message


BAD_XML = {
    "empty.xml": (b"", "empty"),
    "garbage.xml": (bytes(range(256)) * 4, "not well-formed"),
    "truncated.xml": (
        f'<Reports xmlns="{WSXF_NS}"><Report type="UUT" '.encode(),
        "not well-formed",
    ),
    "other.xml": (b"<TestResults><Result/></TestResults>", "not WSXF"),
    "bomb.xml": (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>',
        "DOCTYPE",
    ),
    "repair.xml": (f'<Report xmlns="{WSXF_NS}" type="UUR" ID="x"/>'.encode(), "only UUT"),
    "no-reports.xml": (f'<Reports xmlns="{WSXF_NS}"/>'.encode(), "holds no <Report>"),
}


@pytest.mark.parametrize("name", sorted(BAD_XML))
def test_wsxf_fails_bad_input_cleanly(tmp_path: Path, name: str) -> None:
    data, message = BAD_XML[name]
    path = tmp_path / name
    path.write_bytes(data)
    result = _convert(WSXFConverter(), path)
    assert not result.success
    assert result.reports == []
    assert message in result.message


def test_wsxf_fails_a_truncated_sample_cleanly(samples_dir: Path, tmp_path: Path) -> None:
    data = (samples_dir / "wsxf" / "uut-wsxf-export.xml").read_bytes()
    path = tmp_path / "cut.xml"
    path.write_bytes(data[: len(data) // 2])
    result = _convert(WSXFConverter(), path)
    assert not result.success and "not well-formed" in result.message


@pytest.mark.parametrize("converter", [WSJFConverter(), WSXFConverter()], ids=["wsjf", "wsxf"])
def test_a_vanished_or_unreadable_file_is_a_failure_result(
    tmp_path: Path, converter: WSJFConverter | WSXFConverter
) -> None:
    result = _convert(converter, tmp_path / "deleted-meanwhile.json")
    assert not result.success and "cannot read" in result.message
    assert converter.validate(ConverterSource(tmp_path / "gone"), CONTEXT) == 0.0
    if os.name == "nt" or os.geteuid() == 0:
        return  # permissions do not stop root (or work this way on Windows)
    locked = tmp_path / "locked.json"
    locked.write_bytes(b"{}")
    locked.chmod(0)
    try:
        result = _convert(converter, locked)
    finally:
        locked.chmod(0o600)
    assert not result.success and "cannot read" in result.message


def _all_samples(samples_dir: Path) -> dict[str, Path]:
    return {
        p.relative_to(samples_dir).as_posix(): p
        for p in sorted(samples_dir.rglob("*"))
        if p.suffix.lower() in (".json", ".xml")
    }


def test_validate_tells_wsjf_and_wsxf_from_other_json_and_xml(samples_dir: Path) -> None:
    reject_threshold = 0.2  # the default [[converters]] reject_threshold
    wsjf, wsxf = WSJFConverter(), WSXFConverter()
    for name, path in _all_samples(samples_dir).items():
        jc, xc = _confidence(wsjf, path), _confidence(wsxf, path)
        if name.startswith("wsjf/"):
            assert jc == 1.0 and xc == 0.0, name
        elif name.startswith("wsxf/"):
            assert xc >= 0.9 and jc == 0.0, name
        else:  # ATML, TestStand XML, OpenHTF JSON: neither may claim them
            assert max(jc, xc) < reject_threshold, (name, jc, xc)


def test_validate_gives_report_shaped_but_invalid_json_middling_confidence(
    tmp_path: Path,
) -> None:
    path = tmp_path / "almost.json"
    path.write_text('{"type": "T", "pn": "A"}', encoding="utf-8")
    assert 0.2 < _confidence(WSJFConverter(), path) < 1.0


def test_validate_scores_the_pattern_only_by_default(tmp_path: Path) -> None:
    from tests.support.example_converter import LineCsvConverter

    class PatternOnly(LineCsvConverter):
        validate = LineCsvConverter.__mro__[1].validate  # ConverterBase's default

    assert PatternOnly().validate(ConverterSource(tmp_path / "RESULT.CSV"), CONTEXT) == 0.5
    assert PatternOnly().validate(ConverterSource(tmp_path / "result.txt"), CONTEXT) == 0.0


def test_converted_reports_dump_to_valid_wsjf(samples_dir: Path) -> None:
    for path in (samples_dir / "wsjf").glob("*.json"):
        [report] = _convert(WSJFConverter(), path).reports
        assert dump_report(report)["id"] == str(report.id)


def test_wsjf_refuses_json_nested_too_deeply_to_read_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000, encoding="utf-8")
    result = _convert(WSJFConverter(), path)
    assert not result.success and "nested too deeply" in result.message


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_wsjf_reads_a_byte_order_mark_and_utf16_32_as_the_standard_library_does(
    samples_dir: Path, tmp_path: Path, encoding: str
) -> None:
    """The fast parser refuses these; the fallback must read them to the same report."""
    sample = samples_dir / "wsjf" / "new_report_example.json"
    path = tmp_path / f"{encoding}.json"
    path.write_bytes(sample.read_text(encoding="utf-8").encode(encoding))
    result = _convert(WSJFConverter(), path)
    assert result.success, result.message
    [expected] = _convert(WSJFConverter(), sample).reports
    assert dump_report(result.reports[0]) == dump_report(expected)


def test_wsjf_reads_valid_json_nested_deeper_than_the_fast_parser_goes(tmp_path: Path) -> None:
    """pydantic-core stops at 200 levels; the standard library reads on, so the answer is the
    models' (not a parser's limit)."""
    path = tmp_path / "deep-but-valid.json"
    path.write_text('{"type": "T", "misc": ' + "[" * 300 + "]" * 300 + "}", encoding="utf-8")
    result = _convert(WSJFConverter(), path)
    assert not result.success
    assert "not a valid WSJF report" in result.message
