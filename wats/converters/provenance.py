"""Whose id and station a report carries: the source's, or the pipeline's (invariants 3 and 7).

Why one pure function: the sandbox applies the rule to every report it hands back, ``convert``
shows where each field came from, and the converter worker checks that what came back follows
the rule. All three must agree, and a rule written once can be tested with plain dicts.

The rule:

- **Id.** A converter whose format carries report ids of its own (``ConverterBase.source_ids``:
  WSJF, WSXF) keeps the id the source gave, so a repair report still points at the test report
  it repairs (``uur.refUUT``) and ids a station's own software relies on stay as they are.
  Every other report gets the derived id (converter, source content hash, index): converting
  the same file again after a crash gives the same id either way.
- **Station.** ``machineName``, ``location`` and ``purpose`` are what the file records; the
  configured identity (``[station]``, or the converter's ``[stations.NAME]`` preset) fills only
  what the file leaves empty. With ``override_file_station`` set, the configured identity is
  used whatever the file says (for stations whose files carry a meaningless id).

A field equal to the configured value is reported as coming from the configuration: built-in
converters fill a field the file leaves empty from the same configured identity, so an equal
value cannot be told apart from one the file recorded, and both end as the same report.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from wats.converters.identity import report_id

__all__ = [
    "STATION_KEYS",
    "FieldOrigin",
    "IdOrigin",
    "ReportIdentity",
    "check_identity",
    "decide_identity",
    "fill_station_blanks",
    "source_id",
]

STATION_KEYS: tuple[tuple[str, str], ...] = (
    ("name", "machineName"),
    ("location", "location"),
    ("purpose", "purpose"),
)
"""(station field, WSJF key) pairs, in the order the stamp writes them."""


class IdOrigin(StrEnum):
    """Where a report's id came from (crosses the sandbox pipe and appears in events)."""

    SOURCE = "source"  # the id the file gave (WSJF, WSXF)
    DERIVED = "derived"  # converter + source content hash + index


class FieldOrigin(StrEnum):
    """Where one station field of a report came from."""

    FILE = "file"
    CONFIG = "config"


@dataclass(frozen=True)
class ReportIdentity:
    """What the pipeline decided for one report: its id and station, and where each came from.

    ``station`` is ``{name, location, purpose}``, the form ``wats.converters.stamp`` writes.
    """

    id: str
    id_origin: IdOrigin
    station: dict[str, str]
    origins: dict[str, FieldOrigin]
    warnings: tuple[str, ...] = field(default=())

    def to_wire(self) -> dict[str, Any]:
        """Plain values for the sandbox pipe and for ``convert --explain``'s JSON."""
        return {
            "id": self.id,
            "id_origin": self.id_origin.value,
            "station": dict(self.station),
            "origins": {key: origin.value for key, origin in self.origins.items()},
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> ReportIdentity:
        """The inverse of :meth:`to_wire`; ``ValueError`` for anything malformed (the data
        comes from the sandbox, where a converter's code ran)."""
        try:
            station = {key: str(data["station"][key]) for key, _ in STATION_KEYS}
            origins = {key: FieldOrigin(data["origins"][key]) for key, _ in STATION_KEYS}
            return cls(
                id=str(data["id"]),
                id_origin=IdOrigin(data["id_origin"]),
                station=station,
                origins=origins,
                warnings=tuple(str(w) for w in data.get("warnings") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed report identity: {exc}") from None


def fill_station_blanks(report: Mapping[str, Any], configured: Mapping[str, str]) -> dict[str, Any]:
    """``report`` (a WSJF dict) with each station field it leaves empty or out set to the
    configured one (``{name, location, purpose}``). For converters of formats that are WSJF
    already: WATS refuses an empty ``location``, and the rule is that configuration fills it."""
    filled = dict(report)
    for key, wsjf_key in STATION_KEYS:
        value = filled.get(wsjf_key)
        if value is None or (isinstance(value, str) and not value.strip()):
            filled[wsjf_key] = configured[key]
    return filled


def _is_nil(value: object) -> bool:
    try:
        return uuid.UUID(str(value)).int == 0
    except (TypeError, ValueError, AttributeError):
        return False


def source_id(value: object) -> str | None:
    """``value`` as a canonical (lower-case) UUID, or None when it is not a usable report id:
    missing, not a UUID, or the nil UUID (which names no report)."""
    try:
        parsed = uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None
    return None if parsed.int == 0 else str(parsed)


def decide_identity(
    report: Mapping[str, Any],
    index: int,
    *,
    converter_name: str,
    digest: str,
    configured: Mapping[str, str],
    override_file_station: bool = False,
    keeps_source_ids: bool = False,
) -> ReportIdentity:
    """The id and station report ``index`` of a source (SHA-256 ``digest``) goes out with.

    ``report`` is the WSJF dict a converter produced; ``configured`` the configured station
    ``{name, location, purpose}``.
    """
    warnings: list[str] = []
    chosen_id = source_id(report.get("id")) if keeps_source_ids else None
    if keeps_source_ids and chosen_id is None and not _is_nil(report.get("id")):
        # the nil id is how a converter says "the file gave none"; anything else is a fault
        warnings.append(
            f"report {index} carries no usable id ({report.get('id')!r}); a derived id is used"
        )
    id_origin = IdOrigin.SOURCE if chosen_id is not None else IdOrigin.DERIVED
    if chosen_id is None:
        chosen_id = report_id(converter_name, digest, index)
    station: dict[str, str] = {}
    origins: dict[str, FieldOrigin] = {}
    for key, wsjf_key in STATION_KEYS:
        recorded = report.get(wsjf_key)
        own = recorded.strip() if isinstance(recorded, str) else ""
        if override_file_station or not own:
            station[key] = str(configured[key])
            origins[key] = FieldOrigin.CONFIG
        else:
            station[key] = own
            origins[key] = FieldOrigin.FILE if own != configured[key] else FieldOrigin.CONFIG
    return ReportIdentity(chosen_id, id_origin, station, origins, tuple(warnings))


def check_identity(
    identity: ReportIdentity,
    index: int,
    *,
    derived_id: str,
    configured: Mapping[str, str],
    override_file_station: bool,
) -> str | None:
    """Why ``identity`` (as the sandbox reported it) does not follow the rule, or None.

    The converter worker's check of what came back from the sandbox, where the converter's
    code ran: it cannot see what the file recorded without decoding the body again, so it
    checks what can be checked from the decision itself. A derived id must be exactly the one
    the worker derives (``derived_id``, ``report_id(converter, digest, index)``); a source id
    must be a usable UUID; an overridden station must be the configured one; every field must
    be set and fit WATS's 100 characters.
    """
    if identity.id_origin is IdOrigin.DERIVED:
        if identity.id != derived_id:
            return f"report {index} does not carry the id the pipeline derived"
    elif source_id(identity.id) != identity.id:
        return f"report {index} carries {identity.id!r}, which is not a usable report id"
    for key, _ in STATION_KEYS:
        value = identity.station[key]
        if override_file_station and value != configured[key]:
            return f"report {index} does not carry the configured station {key}"
        if not value.strip() or len(value) > 100:
            return f"report {index} carries a station {key} WATS would refuse: {value!r}"
        if identity.origins[key] is FieldOrigin.CONFIG and value != configured[key]:
            return f"report {index} says its station {key} is the configured one, but it is not"
    return None
