"""The pipeline's stamp (derived id and station) and the worker's prefix check of it."""

from __future__ import annotations

import json
import math

import pytest

from wats.converters.stamp import (
    STAMPED_FIELDS,
    carries_stamp,
    restamped_id,
    stamped_body,
    stamped_prefix,
)
from wats.queue.item import encode_report

REPORT_ID = "6f1c3c52-9d56-5b8f-9d7e-2b1f0e6f2a11"
STATION = {"name": "Line 3 / ICT Ω", "location": "Hall \"B\"", "purpose": "Production"}
REPORT = {
    "type": "T",
    "id": "00000000-0000-0000-0000-000000000000",
    "pn": "PCBA-100",
    "sn": "SN-1",
    "machineName": "from-the-file",
    "root": {"stepType": "SequenceCall", "name": "MainSequence Callback", "steps": []},
}


def _pairs(body: bytes) -> list[tuple[str, object]]:
    """The top-level key/value pairs of a JSON object, duplicates kept."""
    return json.loads(body, object_pairs_hook=lambda pairs: pairs)


def test_the_stamp_comes_first_once_and_overrides_the_converters_values():
    body = stamped_body(REPORT, REPORT_ID, STATION)
    pairs = _pairs(body)
    keys = [key for key, _ in pairs]
    assert keys[: len(STAMPED_FIELDS)] == list(STAMPED_FIELDS)
    assert len(keys) == len(set(keys))  # no key twice: nothing later can override the stamp
    decoded = json.loads(body)
    assert decoded["id"] == REPORT_ID
    assert decoded["machineName"] == STATION["name"]
    assert (decoded["location"], decoded["purpose"]) == (STATION["location"], STATION["purpose"])
    assert {k: v for k, v in decoded.items() if k not in STAMPED_FIELDS} == {
        k: v for k, v in REPORT.items() if k not in STAMPED_FIELDS
    }
    assert REPORT["id"] == "00000000-0000-0000-0000-000000000000"  # the input is not changed


def test_a_stamped_body_carries_its_stamp_and_no_other():
    body = stamped_body(REPORT, REPORT_ID, STATION)
    assert body.startswith(stamped_prefix(REPORT_ID, STATION))
    assert carries_stamp(body, REPORT_ID, STATION)
    other_id = REPORT_ID[:-1] + "2"
    assert not carries_stamp(body, other_id, STATION)
    for field in ("name", "location", "purpose"):
        assert not carries_stamp(body, REPORT_ID, {**STATION, field: STATION[field] + "x"})


@pytest.mark.parametrize(
    "spoil",
    [
        lambda b: b.rstrip(b"}"),  # not closed
        lambda b: b[: len(stamped_prefix(REPORT_ID, STATION))],  # the stamp and nothing else
        lambda b: b" " + b,  # anything before the stamp
        lambda b: encode_report({"type": "T", **json.loads(b)}),  # same values, stamp not first
        lambda b: b"",
    ],
)
def test_bodies_not_written_by_stamped_body_are_refused(spoil):
    assert not carries_stamp(spoil(stamped_body(REPORT, REPORT_ID, STATION)), REPORT_ID, STATION)


def test_encode_report_is_compact_utf8_json_with_the_same_values():
    report = {"name": "Rückseite Ω", "value": 4.55e-05, "big": 2**70, "items": (1, 2)}
    encoded = encode_report(report)
    assert b" " not in encoded.replace(b"R\xc3\xbcckseite ", b"")
    assert "Ω".encode() in encoded  # characters kept, not escaped
    assert json.loads(encoded) == {**report, "items": [1, 2]}


def test_encode_report_keeps_non_finite_numbers_for_the_uploader_to_refuse():
    encoded = encode_report({"a": math.nan, "b": math.inf, "c": -math.inf})
    assert encoded == b'{"a":NaN,"b":Infinity,"c":-Infinity}'


@pytest.mark.parametrize("value", ["\udc80", object()])
def test_encode_report_refuses_what_is_not_json_with_a_value_error(value):
    with pytest.raises(ValueError):
        encode_report({"x": value})


def test_restamping_changes_only_the_id_and_refuses_a_body_without_that_stamp() -> None:
    new_id = "0b8f8d8e-2f7e-4d1a-9f55-3c2a1d4e5f60"
    body = stamped_body(REPORT, REPORT_ID, STATION)
    again = restamped_id(body, REPORT_ID, new_id, STATION)
    assert json.loads(again) == {**json.loads(body), "id": new_id}
    assert carries_stamp(again, new_id, STATION)
    with pytest.raises(ValueError, match="does not carry"):
        restamped_id(body, new_id, REPORT_ID, STATION)
