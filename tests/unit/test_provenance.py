"""The rule for whose id and station a report carries (wats.converters.provenance)."""

from __future__ import annotations

import uuid

import pytest

from wats.converters.identity import report_id
from wats.converters.provenance import (
    FieldOrigin,
    IdOrigin,
    ReportIdentity,
    check_identity,
    decide_identity,
    source_id,
)

DIGEST = "ab" * 32
CONFIGURED = {"name": "hub-host", "location": "Unknown", "purpose": "Development"}
OWN_ID = "33A2D408-3FC8-480B-B554-6866C77FD91C"


def _decide(report: dict, index: int = 0, **options: bool) -> ReportIdentity:
    return decide_identity(
        report, index, converter_name="line-1", digest=DIGEST, configured=CONFIGURED, **options
    )


def test_the_station_the_file_records_wins_over_the_configured_one() -> None:
    identity = _decide({"machineName": "ICT-07", "location": "Line 2", "purpose": "Production"})
    assert identity.station == {"name": "ICT-07", "location": "Line 2", "purpose": "Production"}
    assert set(identity.origins.values()) == {FieldOrigin.FILE}


def test_configuration_fills_only_what_the_file_leaves_empty() -> None:
    identity = _decide({"machineName": "ICT-07", "location": "  ", "purpose": None})
    assert identity.station == {"name": "ICT-07", "location": "Unknown", "purpose": "Development"}
    assert identity.origins == {
        "name": FieldOrigin.FILE,
        "location": FieldOrigin.CONFIG,
        "purpose": FieldOrigin.CONFIG,
    }


def test_override_puts_the_configured_station_on_every_report() -> None:
    identity = _decide(
        {"machineName": "PC-1234", "location": "x", "purpose": "y"}, override_file_station=True
    )
    assert identity.station == CONFIGURED
    assert set(identity.origins.values()) == {FieldOrigin.CONFIG}


def test_a_format_with_ids_of_its_own_keeps_the_source_id_in_canonical_form() -> None:
    identity = _decide({"id": OWN_ID}, keeps_source_ids=True)
    assert identity.id == OWN_ID.lower()
    assert identity.id_origin is IdOrigin.SOURCE


def test_other_formats_get_the_derived_id_whatever_id_the_converter_set() -> None:
    identity = _decide({"id": OWN_ID}, index=2)
    assert identity.id == report_id("line-1", DIGEST, 2)
    assert identity.id_origin is IdOrigin.DERIVED


@pytest.mark.parametrize("bad", [None, "", "not-a-uuid"])
def test_an_unusable_source_id_falls_back_to_the_derived_id_with_a_warning(bad: object) -> None:
    identity = _decide({"id": bad}, keeps_source_ids=True)
    assert identity.id == report_id("line-1", DIGEST, 0)
    assert identity.id_origin is IdOrigin.DERIVED
    assert identity.warnings and "derived id" in identity.warnings[0]


def test_the_nil_id_asks_for_a_derived_id_without_a_warning() -> None:
    # how a converter of a format with optional ids (ATML's uuid) says the file gave none
    identity = _decide({"id": str(uuid.UUID(int=0))}, keeps_source_ids=True)
    assert identity.id == report_id("line-1", DIGEST, 0)
    assert (identity.id_origin, identity.warnings) == (IdOrigin.DERIVED, ())


def test_source_id_refuses_the_nil_uuid_and_normalises_case() -> None:
    assert source_id(uuid.UUID(int=0)) is None
    assert source_id(OWN_ID) == OWN_ID.lower()


def test_a_decision_survives_the_wire_and_malformed_wire_data_is_refused() -> None:
    identity = _decide({"id": OWN_ID, "machineName": "ICT-07"}, keeps_source_ids=True)
    assert ReportIdentity.from_wire(identity.to_wire()) == identity
    broken = identity.to_wire()
    broken["origins"]["name"] = "somewhere"
    with pytest.raises(ValueError, match="malformed"):
        ReportIdentity.from_wire(broken)


def _check(identity: ReportIdentity, index: int = 0, override: bool = False) -> str | None:
    return check_identity(
        identity,
        index,
        derived_id=report_id("line-1", DIGEST, index),
        configured=CONFIGURED,
        override_file_station=override,
    )


def test_the_workers_check_accepts_what_the_rule_decides() -> None:
    for report, options in [
        ({"machineName": "ICT-07"}, {}),
        ({"id": OWN_ID, "machineName": "ICT-07"}, {"keeps_source_ids": True}),
        ({"machineName": "ICT-07"}, {"override_file_station": True}),
    ]:
        identity = _decide(report, **options)
        assert _check(identity, override=options.get("override_file_station", False)) is None


def test_the_workers_check_refuses_a_decision_that_breaks_the_rule() -> None:
    good = _decide({"machineName": "ICT-07"})
    wrong_derived = ReportIdentity(
        report_id("line-1", DIGEST, 5), IdOrigin.DERIVED, good.station, good.origins
    )
    assert "derived" in (_check(wrong_derived) or "")
    not_an_id = ReportIdentity("x/../y", IdOrigin.SOURCE, good.station, good.origins)
    assert "not a usable report id" in (_check(not_an_id) or "")
    assert "configured station" in (_check(good, override=True) or "")
    claims_config = ReportIdentity(
        good.id, IdOrigin.DERIVED, good.station, {**good.origins, "name": FieldOrigin.CONFIG}
    )
    assert "configured one" in (_check(claims_config) or "")
    too_long = ReportIdentity(
        good.id, IdOrigin.DERIVED, {**good.station, "name": "x" * 101}, good.origins
    )
    assert "WATS would refuse" in (_check(too_long) or "")
