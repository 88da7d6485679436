"""Stations: who produced a report, and the registry a hub uses to speak for many.

Every WATS report names its station (``machineName``), ``location`` and ``purpose``. A machine
that serves one station has one ``Station``; a hub serving several test rigs keeps them in a
``StationRegistry`` and marks the one it is currently acting for as active.
"""

from __future__ import annotations

import threading

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["NoActiveStationError", "Station", "StationRegistry", "UnknownStationError"]


class Station(BaseModel):
    """A test station's identity as WATS records it on each report (each field 1-100 chars)."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    location: str = Field(min_length=1, max_length=100)
    purpose: str = Field(min_length=1, max_length=100)


class UnknownStationError(LookupError):
    """A station name the registry does not hold; the message lists the names it does hold."""

    def __init__(self, name: str, known: list[str]) -> None:
        listing = ", ".join(repr(k) for k in known) if known else "none registered"
        super().__init__(f"unknown station {name!r} (known: {listing})")
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])


class NoActiveStationError(LookupError):
    """``get_active`` was called before any station was added or made active."""


class StationRegistry:
    """Named stations for hub mode, plus which one is active. Safe to share between threads.

    The first station added becomes active, so a single-station setup needs no extra call.
    """

    def __init__(self, stations: list[Station] | None = None) -> None:
        self._lock = threading.Lock()
        self._stations: dict[str, Station] = {}
        self._active: str | None = None
        for station in stations or []:
            self.add(station)

    def add(self, station: Station, *, replace: bool = False) -> Station:
        """Register ``station``; a name already present is an error unless ``replace`` is set."""
        with self._lock:
            if station.name in self._stations and not replace:
                raise ValueError(f"station {station.name!r} is already registered")
            self._stations[station.name] = station
            if self._active is None:
                self._active = station.name
            return station

    def get(self, name: str) -> Station:
        """The station called ``name``; ``UnknownStationError`` if there is none."""
        with self._lock:
            return self._lookup(name)

    def remove(self, name: str) -> Station:
        """Forget the station called ``name`` (if it was active, no station is active after)."""
        with self._lock:
            station = self._lookup(name)
            del self._stations[name]
            if self._active == name:
                self._active = None
            return station

    def set_active(self, name: str) -> Station:
        """Make ``name`` the station reports are produced for."""
        with self._lock:
            station = self._lookup(name)
            self._active = name
            return station

    def get_active(self) -> Station:
        """The active station; ``NoActiveStationError`` if none is."""
        with self._lock:
            if self._active is None:
                raise NoActiveStationError("no active station: add one or call set_active(name)")
            return self._stations[self._active]

    def list(self) -> list[Station]:
        """All stations, in the order they were added."""
        with self._lock:
            return list(self._stations.values())

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._stations

    def __len__(self) -> int:
        with self._lock:
            return len(self._stations)

    def __repr__(self) -> str:
        with self._lock:
            return f"StationRegistry(stations={list(self._stations)!r}, active={self._active!r})"

    def _lookup(self, name: str) -> Station:
        try:
            return self._stations[name]
        except KeyError:
            raise UnknownStationError(name, list(self._stations)) from None
