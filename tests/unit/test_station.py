"""Stations and the hub-mode registry."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from wats.api.station import NoActiveStationError, Station, StationRegistry, UnknownStationError

ICT = Station(name="ICT-01", location="Line 1", purpose="Production")
FCT = Station(name="FCT-02", location="Line 1", purpose="Production")


def test_station_fields_are_required_and_bounded() -> None:
    with pytest.raises(ValidationError, match="name"):
        Station(name="", location="L", purpose="P")
    with pytest.raises(ValidationError, match="purpose"):
        Station(name="N", location="L", purpose="x" * 101)


def test_first_station_added_becomes_active() -> None:
    registry = StationRegistry()
    registry.add(ICT)
    registry.add(FCT)
    assert registry.get_active() == ICT


def test_set_active_switches_the_station_reports_are_made_for() -> None:
    registry = StationRegistry([ICT, FCT])
    registry.set_active("FCT-02")
    assert registry.get_active() == FCT


def test_get_returns_the_named_station() -> None:
    assert StationRegistry([ICT, FCT]).get("ICT-01") == ICT


def test_unknown_name_gives_a_clear_error_listing_known_names() -> None:
    registry = StationRegistry([ICT])
    with pytest.raises(UnknownStationError, match=r"'EOL-9'.*'ICT-01'"):
        registry.get("EOL-9")
    with pytest.raises(UnknownStationError):
        registry.set_active("EOL-9")
    with pytest.raises(UnknownStationError):
        registry.remove("EOL-9")


def test_adding_a_name_twice_is_an_error_unless_replacing() -> None:
    registry = StationRegistry([ICT])
    moved = Station(name="ICT-01", location="Line 2", purpose="Production")
    with pytest.raises(ValueError, match="already registered"):
        registry.add(moved)
    registry.add(moved, replace=True)
    assert registry.get("ICT-01").location == "Line 2"


def test_list_keeps_insertion_order_and_remove_forgets() -> None:
    registry = StationRegistry([ICT, FCT])
    assert [s.name for s in registry.list()] == ["ICT-01", "FCT-02"]
    registry.remove("ICT-01")
    assert [s.name for s in registry.list()] == ["FCT-02"]
    assert "ICT-01" not in registry
    assert len(registry) == 1


def test_removing_the_active_station_leaves_none_active() -> None:
    registry = StationRegistry([ICT])
    registry.remove("ICT-01")
    with pytest.raises(NoActiveStationError):
        registry.get_active()


def test_empty_registry_has_no_active_station() -> None:
    with pytest.raises(NoActiveStationError, match="add one"):
        StationRegistry().get_active()
