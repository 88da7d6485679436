"""The shared rule for WATS-required header fields (wats.converters.defaults), on its own:
a value the file gives wins and is checked as WATS checks it; an empty field takes the
argument, with a warning and a confidence cap only while that argument is at its default."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from wats.converters import ConverterBase
from wats.converters.defaults import (
    DEFAULTED_CONFIDENCE,
    SERIAL_DEFAULTED_CONFIDENCE,
    DefaultIdentifier,
    DefaultText,
    HeaderDefaults,
    HeaderField,
    HeaderFieldError,
    part_number_argument,
    process_code_argument,
    revision_argument,
    serial_number_argument,
)
from wats.converters.loader import builtin_converters


class Arguments(BaseModel):
    process_code: int = process_code_argument()
    default_part_number: DefaultIdentifier = part_number_argument()
    default_revision: DefaultText = revision_argument("1")
    default_serial_number: DefaultIdentifier | None = serial_number_argument()


def _defaults(**arguments: object) -> tuple[HeaderDefaults, list[str]]:
    warnings: list[str] = []
    return HeaderDefaults(Arguments.model_validate(arguments), warnings.append), warnings


def test_the_files_value_wins_without_a_warning() -> None:
    defaults, warnings = _defaults()
    assert defaults.text(HeaderField.PART_NUMBER, "PCBA-1", "line 2") == "PCBA-1"
    assert defaults.code(50) == 50
    assert (warnings, defaults.confidence) == ([], 1.0)


@pytest.mark.parametrize("given", [None, "", "   "])
def test_an_empty_field_takes_the_built_in_default_warns_and_caps_confidence(
    given: str | None,
) -> None:
    defaults, warnings = _defaults()
    assert defaults.text(HeaderField.PART_NUMBER, given, "UUT.PartNumber") == "UNKNOWN"
    assert warnings == [
        "the file names no part number (UUT.PartNumber); using 'UNKNOWN' "
        "(the built-in default of argument default_part_number)"
    ]
    assert defaults.confidence == DEFAULTED_CONFIDENCE == 0.8


def test_a_value_set_in_the_config_is_used_silently() -> None:
    defaults, warnings = _defaults(default_revision="C", process_code=100)
    assert defaults.text(HeaderField.REVISION, None) == "C"
    assert defaults.code(None) == 100
    assert (warnings, defaults.confidence) == ([], 1.0)


def test_an_unusable_operation_warns_even_with_a_configured_process_code() -> None:
    defaults, warnings = _defaults(process_code=100)
    assert defaults.code(None, "operation 'X' is not a known process") == 100
    assert warnings == ["operation 'X' is not a known process; using process code 100 "
                        "(argument process_code)"]  # fmt: skip
    assert defaults.confidence == 0.8


def test_a_missing_serial_takes_its_default_with_a_confidence_below_the_alarm_line() -> None:
    defaults, warnings = _defaults()
    assert defaults.text(HeaderField.SERIAL_NUMBER, "", "dut_id") == "UNKNOWN"
    assert warnings == [
        "the file names no serial number (dut_id); using 'UNKNOWN' "
        "(the built-in default of argument default_serial_number)"
    ]
    assert defaults.confidence == SERIAL_DEFAULTED_CONFIDENCE < 0.5  # the default alarm line
    defaults, warnings = _defaults(default_serial_number="NONE-1")
    assert defaults.text(HeaderField.SERIAL_NUMBER, "", "dut_id") == "NONE-1"
    assert (warnings, defaults.confidence) == ([], 1.0)


def test_an_empty_field_without_any_default_fails_naming_the_argument() -> None:
    defaults, _ = _defaults()
    defaults.arguments = Arguments.model_construct(default_serial_number=None)
    with pytest.raises(HeaderFieldError, match="no serial number \\(dut_id\\); set the converter "
                       "argument default_serial_number"):  # fmt: skip
        defaults.text(HeaderField.SERIAL_NUMBER, "", "dut_id")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (HeaderField.SERIAL_NUMBER, "SN*1", "contains characters WATS refuses (*)"),
        (HeaderField.PART_NUMBER, "A[1]", "contains characters WATS refuses ([ ])"),
        (HeaderField.PART_NUMBER, "P" * 101, "is 101 characters long; WATS allows 100"),
        (HeaderField.REVISION, "R" * 101, "is 101 characters long; WATS allows 100"),
    ],
)
def test_values_wats_refuses_fail_naming_the_field_and_where(
    field: HeaderField, value: str, expected: str
) -> None:
    defaults, _ = _defaults()
    with pytest.raises(HeaderFieldError) as caught:
        defaults.text(field, value, "line 3")
    assert f"the {field} (line 3) {value[:40]!r} {expected}" in str(caught.value)


def test_a_revision_may_hold_characters_that_identifiers_may_not() -> None:
    defaults, _ = _defaults()
    assert defaults.text(HeaderField.REVISION, "A/B") == "A/B"


FOREIGN_FORMATS = ("atml", "teststand-xml", "openhtf", "csv")


@pytest.mark.parametrize("name", FOREIGN_FORMATS)
def test_every_foreign_format_converter_has_the_same_arguments_documented(name: str) -> None:
    converter: type[ConverterBase] = builtin_converters()[name]
    schema = converter.Arguments.model_json_schema()["properties"]
    for field in HeaderField:
        assert field.argument in schema, (name, field.argument)
        assert "description" in schema[field.argument], (name, field.argument)
    assert converter.Arguments().default_part_number == "UNKNOWN"  # type: ignore[attr-defined]
    assert converter.Arguments().default_serial_number == "UNKNOWN"  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["wsjf", "wsxf"])
def test_wats_own_formats_keep_wats_validation_and_take_no_defaults(name: str) -> None:
    converter = builtin_converters()[name]
    assert "default_part_number" not in converter.Arguments.model_fields
