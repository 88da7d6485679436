"""Genuine WATS exports survive parse -> dump unchanged (apart from output-only fields)."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from wats.api.models import (
    OUTPUT_ONLY_FIELDS,
    GenericStep,
    MultiNumericLimitStep,
    NumericLimitStep,
    PassFailStep,
    SequenceCallStep,
    StringValueStep,
    UnknownStep,
    UURReport,
    UUTReport,
    dump_report,
    iter_steps,
    parse_report,
    report_to_json,
    strip_output_only,
)

WSJF_SAMPLES = ["uut-wsjf-export.json", "new_report_example.json", "uur_example.json"]


def assert_same_json(actual: Any, expected: Any, path: str = "$") -> None:
    """Equal as JSON *and* of the same JSON types (1 and 1.0 differ, null and absent differ)."""
    assert type(actual) is type(expected), f"{path}: {actual!r} != {expected!r}"
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), (
            f"{path}: extra {sorted(actual.keys() - expected.keys())}, "
            f"missing {sorted(expected.keys() - actual.keys())}"
        )
        for key in expected:
            assert_same_json(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for index, (left, right) in enumerate(zip(actual, expected, strict=True)):
            assert_same_json(left, right, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def load_sample(samples_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((samples_dir / "wsjf" / name).read_text(encoding="utf-8"))


@pytest.mark.samples
@pytest.mark.parametrize("name", WSJF_SAMPLES)
def test_sample_dumps_back_to_identical_json_when_output_only_fields_are_kept(
    samples_dir: Path, name: str
) -> None:
    raw = load_sample(samples_dir, name)
    report = parse_report(json.dumps(raw))
    assert_same_json(dump_report(report, include_output_only=True), raw)


@pytest.mark.samples
@pytest.mark.parametrize("name", WSJF_SAMPLES)
def test_sample_dumps_to_input_minus_output_only_fields_by_default(
    samples_dir: Path, name: str
) -> None:
    raw = load_sample(samples_dir, name)
    report = parse_report(raw)
    expected = strip_output_only(copy.deepcopy(raw))
    assert_same_json(dump_report(report), expected)
    assert not OUTPUT_ONLY_FIELDS & {k for k in dump_report(report) if "." not in k}


@pytest.mark.samples
@pytest.mark.parametrize("name", WSJF_SAMPLES)
def test_json_text_reparses_to_the_same_report(samples_dir: Path, name: str) -> None:
    report = parse_report((samples_dir / "wsjf" / name).read_bytes())
    again = parse_report(report_to_json(report, include_output_only=True))
    assert_same_json(
        dump_report(again, include_output_only=True),
        dump_report(report, include_output_only=True),
    )


@pytest.mark.samples
def test_seven_digit_fractional_seconds_are_written_as_received(samples_dir: Path) -> None:
    report = parse_report(load_sample(samples_dir, "uut-wsjf-export.json"))
    assert dump_report(report)["start"] == "2026-01-30T22:01:41.4707353+01:00"
    assert report.start.utcoffset() is not None
    copied = pickle.loads(pickle.dumps(copy.deepcopy(report)))
    assert dump_report(copied)["start"] == "2026-01-30T22:01:41.4707353+01:00"


@pytest.mark.samples
def test_mixed_case_operator_is_understood_and_kept_as_spelled(samples_dir: Path) -> None:
    raw = load_sample(samples_dir, "new_report_example.json")
    report = parse_report(raw)
    spelled = [
        meas
        for step in iter_steps(report)
        if isinstance(step, StringValueStep)
        for meas in step.string_meas or []
        if meas.comp_op == "IGNORECASE"
    ]
    assert spelled
    assert '"compOp":"IgnoreCase"' in report_to_json(report)


@pytest.mark.samples
def test_steps_are_typed_by_step_type_and_unknown_types_are_kept_verbatim(
    samples_dir: Path,
) -> None:
    raw = load_sample(samples_dir, "uut-wsjf-export.json")
    report = parse_report(raw)
    assert isinstance(report, UUTReport)
    by_type = {step.step_type: type(step) for step in iter_steps(report)}
    assert by_type["SequenceCall"] is SequenceCallStep
    assert by_type["ET_NLT"] is NumericLimitStep
    assert by_type["ET_MNLT"] is MultiNumericLimitStep
    assert by_type["ET_MPFT"] is PassFailStep
    assert by_type["ET_MSVT"] is StringValueStep
    assert by_type["NI_Flow_If"] is GenericStep
    for unknown in ("WATS_XYGMNLT", "MessagePopup", "CallExecutable", "DoWhile"):
        assert by_type[unknown] is UnknownStep
    popup = next(s for s in iter_steps(report) if s.step_type == "MessagePopup")
    assert popup.model_extra == {"messagePopup": {"response": None, "button": 0}}


@pytest.mark.samples
def test_iter_steps_visits_every_step_depth_first(samples_dir: Path) -> None:
    raw = load_sample(samples_dir, "uut-wsjf-export.json")
    report = parse_report(raw)
    ids = [step.id for step in iter_steps(report)]
    assert ids == sorted(ids)  # the export numbers steps in depth-first order
    assert len(ids) == 186


@pytest.mark.samples
def test_uur_sample_parses_as_repair_report_with_failures_on_the_main_unit(
    samples_dir: Path,
) -> None:
    report = parse_report(load_sample(samples_dir, "uur_example.json"))
    assert isinstance(report, UURReport)
    assert report.uur.process_code == 90
    main = report.sub_units[0]
    assert main.idx == 0
    assert main.failures is not None and main.failures[0].com_ref == "U1"
    assert list(iter_steps(report)) == []


def test_unknown_fields_on_known_objects_survive_round_trip() -> None:
    report = parse_report(
        {
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
            "futureHeaderField": {"nested": [1, 2]},
            "root": {
                "stepType": "SequenceCall",
                "name": "Main",
                "status": "P",
                "group": "M",
                "futureStepField": "kept",
                "steps": [
                    {
                        "stepType": "ET_NLT",
                        "name": "V",
                        "status": "P",
                        "group": "M",
                        "numericMeas": [{"status": "P", "value": 1.5, "compOp": "LOG", "x": 1}],
                    }
                ],
            },
        }
    )
    dumped = dump_report(report)
    assert dumped["futureHeaderField"] == {"nested": [1, 2]}
    assert dumped["root"]["futureStepField"] == "kept"
    assert dumped["root"]["steps"][0]["numericMeas"][0]["x"] == 1
