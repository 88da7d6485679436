"""Invalid reports are refused, and the error names the field that is wrong."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from wats.api.models import (
    CompOp,
    NumericLimitStep,
    ReportFormatError,
    UUTReport,
    describe_validation_error,
    dump_report,
    parse_report,
)

VALID: dict[str, Any] = {
    "type": "T",
    "id": "7b0c8a3e-1c1e-4a35-9f5e-0d6b1b3c2f10",
    "pn": "PN-1",
    "sn": "SN-1",
    "rev": "A",
    "processCode": 10,
    "result": "P",
    "machineName": "station-1",
    "location": "lab",
    "purpose": "dev",
    "start": "2026-01-30T22:01:41+01:00",
    "miscInfos": [{"description": "fw", "text": "1.0"}],
    "root": {
        "stepType": "SequenceCall",
        "name": "Main",
        "status": "P",
        "steps": [
            {
                "stepType": "ET_NLT",
                "name": "V",
                "status": "P",
                "numericMeas": [
                    {"status": "P", "value": 1.5, "compOp": "GE", "lowLimit": 1.0, "unit": "V"}
                ],
            }
        ],
    },
}


def mutated(**changes: Any) -> dict[str, Any]:
    report = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is ...:
            del report[key]
        else:
            report[key] = value
    return report


def error_text(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_report(data)
    return describe_validation_error(caught.value)


def test_valid_report_parses() -> None:
    report = parse_report(VALID)
    assert isinstance(report, UUTReport)
    assert report.root is not None
    assert isinstance(report.root.steps[0], NumericLimitStep)


def test_missing_serial_number_is_refused_naming_sn() -> None:
    assert error_text(mutated(sn=...)).startswith("sn: Field required")


@pytest.mark.parametrize("char", list("*%?[]^!/\\"))
def test_serial_number_with_forbidden_character_is_refused(char: str) -> None:
    text = error_text(mutated(sn=f"SN{char}1"))
    assert text.startswith("sn: ")
    assert "must not contain" in text


def test_part_number_longer_than_100_characters_is_refused() -> None:
    assert error_text(mutated(pn="P" * 101)).startswith("pn: ")
    parse_report(mutated(pn="P" * 100))


@pytest.mark.parametrize("field", ["rev", "machineName", "location", "purpose"])
def test_empty_header_text_is_refused(field: str) -> None:
    assert error_text(mutated(**{field: ""})).startswith(f"{field}: ")


def test_bad_result_letter_is_refused_naming_result() -> None:
    assert error_text(mutated(result="X")).startswith("result: ")


def test_bad_comp_op_is_refused_naming_the_measurement_field() -> None:
    data = copy.deepcopy(VALID)
    data["root"]["steps"][0]["numericMeas"][0]["compOp"] = "ABOUT"
    assert error_text(data).startswith("root.steps.0.numericMeas.0.compOp: ")


def test_string_operator_on_numeric_measurement_is_refused() -> None:
    data = copy.deepcopy(VALID)
    data["root"]["steps"][0]["numericMeas"][0]["compOp"] = "CASESENSIT"
    assert "root.steps.0.numericMeas.0" in error_text(data)


def test_start_without_utc_offset_is_refused_naming_start() -> None:
    text = error_text(mutated(start="2026-01-30T22:01:41"))
    assert text.startswith("start: ")
    assert "UTC offset" in text


def test_naive_datetime_in_code_is_refused() -> None:
    with pytest.raises(ValidationError, match="UTC offset"):
        UUTReport.model_validate({**VALID, "start": datetime(2026, 1, 1)})
    report = UUTReport.model_validate({**VALID, "start": datetime(2026, 1, 1, tzinfo=UTC)})
    assert dump_report(report)["start"] == "2026-01-01T00:00:00+00:00"


def test_misc_info_text_over_100_characters_is_refused() -> None:
    text = error_text(mutated(miscInfos=[{"description": "fw", "text": "x" * 101}]))
    assert text.startswith("miscInfos.0.text: ")


def test_unknown_report_type_is_refused_naming_type() -> None:
    assert "'type'" in error_text(mutated(type="Q"))


def test_step_name_over_100_characters_is_refused() -> None:
    data = copy.deepcopy(VALID)
    data["root"]["steps"][0]["name"] = "n" * 101
    assert error_text(data).startswith("root.steps.0.name: ")


def test_single_numeric_step_with_two_measurements_is_refused() -> None:
    data = copy.deepcopy(VALID)
    meas = data["root"]["steps"][0]["numericMeas"]
    meas.append(dict(meas[0]))
    assert "one measurement" in error_text(data)


def test_step_without_step_type_is_refused() -> None:
    data = copy.deepcopy(VALID)
    del data["root"]["steps"][0]["stepType"]
    assert error_text(data).startswith("root.steps.0: ")


def test_non_json_text_raises_a_value_error_subclass() -> None:
    with pytest.raises(ReportFormatError):
        parse_report("{not json")
    with pytest.raises(ValueError, match="JSON object"):
        parse_report("[1, 2]")


def test_mixed_case_comp_op_maps_to_the_operator() -> None:
    assert CompOp("IgnoreCase") is CompOp.IGNORECASE
