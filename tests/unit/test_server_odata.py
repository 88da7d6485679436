"""The $filter/$orderby parser: what it accepts, what SQL it yields, and how it refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wats.server.odata import (
    BoolOp,
    Comparison,
    FunctionCall,
    Not,
    ODataError,
    Tok,
    filter_to_sql,
    orderby_to_sql,
    parse_datetime,
    parse_filter,
    tokenize,
)
from wats.server.store import HEADER_FIELDS


def test_tokenizer_reads_strings_with_escaped_quotes_and_positions() -> None:
    tokens = tokenize("serialNumber eq 'O''Brien'")
    assert [t.kind for t in tokens] == [Tok.IDENT, Tok.IDENT, Tok.STRING, Tok.END]
    assert tokens[2].value == "O'Brien"
    assert tokens[2].pos == 16


def test_tokenizer_reads_bare_and_wrapped_datetimes_as_utc() -> None:
    bare, _, wrapped, *_ = tokenize("2026-01-01T01:00:00+01:00 , datetime'2026-01-01T00:00:00'")
    assert bare.kind is Tok.DATETIME and wrapped.kind is Tok.DATETIME
    assert bare.value == wrapped.value == datetime(2026, 1, 1, tzinfo=UTC)


def test_and_binds_tighter_than_or() -> None:
    node = parse_filter("result eq 'F' or result eq 'E' and processCode eq 50")
    assert isinstance(node, BoolOp) and node.op == "or"
    assert isinstance(node.right, BoolOp) and node.right.op == "and"


def test_parentheses_and_not_shape_the_tree() -> None:
    node = parse_filter("not (result eq 'P' or result eq 'D')")
    assert isinstance(node, Not)
    assert isinstance(node.operand, BoolOp) and node.operand.op == "or"


def test_keywords_are_case_insensitive() -> None:
    node = parse_filter("processCode EQ 50 AND result Ne 'P'")
    assert isinstance(node, BoolOp)
    assert node.left == Comparison("processCode", "eq", 50, 0)


def test_functions_parse_to_calls() -> None:
    assert parse_filter("startswith(serialNumber, 'SN-')") == FunctionCall(
        "startswith", "serialNumber", "SN-", 0
    )


def test_compiled_filter_binds_values_as_parameters() -> None:
    sql, params = filter_to_sql("serialNumber eq 'x'' OR 1=1' and processCode ne 10", HEADER_FIELDS)
    assert sql == "((serial_number = ?) AND (process_code != ?))"
    assert params == ["x' OR 1=1", 10]


def test_date_comparisons_compile_to_canonical_utc_text() -> None:
    sql, params = filter_to_sql(
        "startUtc ge 2026-01-01T00:00:00Z and start lt datetime'2026-02-01T01:00:00+01:00'",
        HEADER_FIELDS,
    )
    assert sql == "((start_utc >= ?) AND (start_utc < ?))"
    assert params == ["2026-01-01T00:00:00.000000Z", "2026-02-01T00:00:00.000000Z"]


def test_result_words_are_translated_to_wsjf_letters() -> None:
    assert filter_to_sql("result eq 'Failed'", HEADER_FIELDS)[1] == ["F"]


def test_null_compiles_to_is_null() -> None:
    assert filter_to_sql("operator eq null", HEADER_FIELDS) == ("(operator IS NULL)", [])


def test_like_patterns_escape_wildcards() -> None:
    sql, params = filter_to_sql("contains(partNumber, '50%_x')", HEADER_FIELDS)
    assert "LIKE ? ESCAPE" in sql
    assert params == ["%50\\%\\_x%"]


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("colour eq 'red'", "unknown field 'colour'"),
        ("serialNumber eq", "expected a literal"),
        ("serialNumber 'x'", "expected a comparison operator"),
        ("serialNumber eq 'x' result eq 'P'", "position 20"),
        ("(result eq 'P'", "expected ')'"),
        ("serialNumber eq 'open", "unterminated string"),
        ("serialNumber eq 'a' & 1", "unexpected character '&'"),
        ("processCode eq 'fifty'", "processCode needs an integer"),
        ("startUtc gt 42", "startUtc needs a datetime"),
        ("serialNumber eq 5", "serialNumber needs a string"),
        ("startUtc gt datetime'2026-13-45'", "invalid datetime"),
        ("   ", "empty filter"),
    ],
)
def test_bad_filters_are_refused_naming_the_problem(source: str, fragment: str) -> None:
    with pytest.raises(ODataError, match="filter") as info:
        filter_to_sql(source, HEADER_FIELDS)
    assert fragment in str(info.value)


def test_orderby_compiles_fields_and_directions() -> None:
    assert orderby_to_sql("startUtc desc, serialNumber", HEADER_FIELDS) == (
        "start_utc DESC, serial_number ASC"
    )


@pytest.mark.parametrize(
    ("source", "fragment"),
    [("colour desc", "unknown field 'colour'"), ("start sideways", "asc or desc"), ("", "cannot")],
)
def test_bad_orderby_is_refused(source: str, fragment: str) -> None:
    with pytest.raises(ODataError, match=r"\$orderby") as info:
        orderby_to_sql(source, HEADER_FIELDS)
    assert fragment in str(info.value)


def test_parse_datetime_accepts_seven_fraction_digits_and_naive_as_utc() -> None:
    assert parse_datetime("2026-01-30T22:01:41.4707353+01:00") == datetime(
        2026, 1, 30, 21, 1, 41, 470735, tzinfo=UTC
    )
    assert parse_datetime("2026-01-30").tzinfo is UTC
