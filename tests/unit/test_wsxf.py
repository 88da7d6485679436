"""WSXF (XML) and WSJF (JSON) describe the same UUT report the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_models_roundtrip import assert_same_json
from wats.api.builder import UUTReportBuilder
from wats.api.models import CompOp, dump_report, parse_report
from wats.api.wsxf import NAMESPACE, WsxfError, report_to_wsxf, wsxf_to_report

# Fields WATS's JSON export carries and its XML export does not: both output-only.
ONLY_IN_JSON_EXPORT = {"processCodeFormat", "assetStats"}


@pytest.mark.samples
def test_wsxf_and_wsjf_exports_of_one_report_give_equal_models(samples_dir: Path) -> None:
    from_xml = wsxf_to_report((samples_dir / "wsxf" / "uut-wsxf-export.xml").read_bytes())
    from_json = parse_report((samples_dir / "wsjf" / "uut-wsjf-export.json").read_text())
    assert_same_json(dump_report(from_xml), dump_report(from_json))


@pytest.mark.samples
def test_only_documented_output_only_fields_differ_between_the_exports(samples_dir: Path) -> None:
    from_xml = wsxf_to_report((samples_dir / "wsxf" / "uut-wsxf-export.xml").read_text("utf-8"))
    from_json = parse_report((samples_dir / "wsjf" / "uut-wsjf-export.json").read_bytes())
    full_xml = dump_report(from_xml, include_output_only=True)
    full_json = dump_report(from_json, include_output_only=True)
    assert set(full_json) - set(full_xml) == ONLY_IN_JSON_EXPORT
    for key in ONLY_IN_JSON_EXPORT:
        full_json.pop(key)
    assert_same_json(full_xml, full_json)  # startUTC, processName, origin do match


@pytest.mark.samples
def test_sample_report_survives_report_to_wsxf_to_report(samples_dir: Path) -> None:
    report = parse_report((samples_dir / "wsjf" / "uut-wsjf-export.json").read_bytes())
    xml = report_to_wsxf(report)
    assert f'xmlns="{NAMESPACE}"' in xml
    expected = dump_report(report, include_output_only=True)
    for key in ONLY_IN_JSON_EXPORT:
        expected.pop(key)
    expected["assets"], expected["additionalData"] = [], []
    assert_same_json(dump_report(wsxf_to_report(xml), include_output_only=True), expected)


def test_built_report_survives_report_to_wsxf_to_report() -> None:
    builder = UUTReportBuilder(
        pn="PCBA-1",
        sn="SN-0001",
        rev="B",
        process_code=10,
        station_name="ict-01",
        location="Line 1",
        purpose="Production",
        operator="op1",
    )
    with builder.sequence("Power") as power:
        power.numeric("VCC", 3.31, CompOp.GELE, low=3.2, high=3.4, unit="V")
        power.string_value("FW", "1.2.3", CompOp.CASESENSIT, limit="1.2.3")
        power.pass_fail("Boot", {"uart": True, "led": False})
    builder.misc_info("Fixture", "F-7")
    builder.sub_unit("PCBA", "SUB-1", "SUBSN-1", "A")
    report = builder.build()
    back = wsxf_to_report(report_to_wsxf(report))
    expected = dump_report(report)
    expected["assets"], expected["additionalData"] = [], []
    actual = dump_report(back)
    # Absent optional values come back as explicit nulls (WSXF cannot tell them apart).
    assert (
        actual["root"]["steps"][0]["steps"][0]["numericMeas"]
        == (expected["root"]["steps"][0]["steps"][0]["numericMeas"])
    )
    assert actual["result"] == "F"
    assert actual["start"] == expected["start"]
    assert [s["name"] for s in actual["root"]["steps"][0]["steps"]] == ["VCC", "FW", "Boot"]


def test_document_type_declarations_are_refused() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        f'<Reports xmlns="{NAMESPACE}"><Report type="UUT">&b;</Report></Reports>'
    )
    with pytest.raises(WsxfError, match="DOCTYPE"):
        wsxf_to_report(bomb)


def test_non_uut_and_malformed_xml_are_refused_with_a_clear_error() -> None:
    with pytest.raises(WsxfError, match="only UUT"):
        wsxf_to_report(f'<Reports xmlns="{NAMESPACE}"><Report type="UUR"/></Reports>')
    with pytest.raises(WsxfError, match="well-formed"):
        wsxf_to_report(b"<Reports>")
    with pytest.raises(WsxfError, match="no <Report>"):
        wsxf_to_report("<Reports/>")


def test_invalid_wsxf_report_names_the_field() -> None:
    xml = (
        f'<Reports xmlns="{NAMESPACE}"><Report type="UUT" ID="{"0" * 8}-0000-0000-0000-{"0" * 12}"'
        ' Start="2026-01-01T00:00:00+00:00" Result="Passed" SN="bad*sn" PN="P" Rev="A"'
        ' MachineName="m" Location="l" Purpose="p"><Process Code="10"/></Report></Reports>'
    )
    with pytest.raises(ValueError, match="sn"):
        wsxf_to_report(xml)
