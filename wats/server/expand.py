"""``$expand`` on ``GET /api/Report/Query/Header``: a header's sub-collections, only when asked.

WATS leaves a header's lists out unless the query expands them, because they cost a join each.
The names are those of Virinco's header model: ``subUnits``, ``miscInfo``, ``assets``,
``attachments`` for test reports, ``uurSubUnits``, ``uurMiscInfo``, ``uurAttachments`` for repair
reports (pyWATS also asks for ``uurAssets``). A name expands the headers of its own report kind;
on a header of the other kind it adds nothing. The lists are read from the stored WSJF:

- ``subUnits``/``uurSubUnits``: ``{partType, serialNumber, partNumber, revision}`` per sub-unit
  (``partType`` for test reports only);
- ``miscInfo``/``uurMiscInfo``: ``{description, value}``, ``value`` being the misc info's text,
  else its number as text;
- ``assets``/``uurAssets``: ``{serialNumber}`` plus the counters WATS keeps in its asset registry
  (``runningCount``, ``totalCount``, ...), which this server has not and gives as null;
- ``attachments``: ``{filename}`` for each report ``binaryData`` entry and step attachment;
  ``uurAttachments``: ``{id, filename}`` for each ``binaryData`` entry (``id`` null: the server
  keeps no separate attachment records).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


class ExpandError(ValueError):
    """An ``$expand`` the server cannot honour; the message names the unknown part."""


def _sub_units(report: dict[str, Any], *, with_type: bool) -> list[dict[str, Any]]:
    units = []
    for unit in report.get("subUnits") or []:
        if not isinstance(unit, dict):
            continue
        entry = {"serialNumber": unit.get("sn"), "partNumber": unit.get("pn")}
        entry["revision"] = unit.get("rev")
        if with_type:
            entry = {"partType": unit.get("partType"), **entry}
        units.append(entry)
    return units


def _misc_info(report: dict[str, Any]) -> list[dict[str, Any]]:
    infos = []
    for info in report.get("miscInfos") or []:
        if not isinstance(info, dict):
            continue
        value = info.get("text")
        if value is None and info.get("numeric") is not None:
            value = str(info["numeric"])
        infos.append({"description": info.get("description"), "value": value})
    return infos


_ASSET_COUNTERS = (
    "runningCount",
    "runningCountExceeded",
    "totalCount",
    "totalCountExceeded",
    "daysSinceMaintenance",
    "maintenanceDaysOverdue",
    "daysSinceCalibration",
    "calibrationDaysOverdue",
)


def _assets(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"serialNumber": a.get("sn"), **dict.fromkeys(_ASSET_COUNTERS)}
        for a in report.get("assets") or []
        if isinstance(a, dict)
    ]


def _step_attachments(step: Any) -> Iterator[str | None]:
    if not isinstance(step, dict):
        return
    attachment = step.get("attachment")
    if isinstance(attachment, dict):
        yield attachment.get("name")
    for child in step.get("steps") or []:
        yield from _step_attachments(child)


def _binary_names(report: dict[str, Any]) -> list[str | None]:
    return [b.get("name") for b in report.get("binaryData") or [] if isinstance(b, dict)]


def _attachments(report: dict[str, Any]) -> list[dict[str, Any]]:
    names = [*_binary_names(report), *_step_attachments(report.get("root"))]
    return [{"filename": name} for name in names]


def _uur_attachments(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": None, "filename": name} for name in _binary_names(report)]


# wire name → (report type it applies to, builder)
_EXPANSIONS: dict[str, tuple[str, Callable[[dict[str, Any]], list[dict[str, Any]]]]] = {
    "subUnits": ("T", lambda r: _sub_units(r, with_type=True)),
    "miscInfo": ("T", _misc_info),
    "assets": ("T", _assets),
    "attachments": ("T", _attachments),
    "uurSubUnits": ("R", lambda r: _sub_units(r, with_type=False)),
    "uurMiscInfo": ("R", _misc_info),
    "uurAssets": ("R", _assets),
    "uurAttachments": ("R", _uur_attachments),
}


def parse_expand(raw: str | None) -> list[str]:
    """The wire names asked for, in the server's spelling (names match case-insensitively)."""
    if raw is None or not raw.strip():
        return []
    by_lower = {name.lower(): name for name in _EXPANSIONS}
    names: list[str] = []
    for part in raw.split(","):
        word = part.strip()
        if not word:
            continue
        name = by_lower.get(word.lower())
        if name is None:
            known = ", ".join(_EXPANSIONS)
            raise ExpandError(f"$expand: unknown collection {word!r} (expandable: {known})")
        if name not in names:
            names.append(name)
    return names


def expansions(report_type: str, report: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The expanded lists of one header (``report`` is its stored WSJF)."""
    out: dict[str, Any] = {}
    for name in names:
        kind, build = _EXPANSIONS[name]
        if kind == report_type:
            out[name] = build(report)
    return out
