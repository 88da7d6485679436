"""The pipeline's stamp on a report: its derived id and the identity of the station it came from.

Why a module of its own: the converter sandbox writes the stamp and the converter worker checks
it, and the check is only as good as both sides agreeing, byte for byte, on the form. The
stamped fields are written first in the body, so the worker checks them by comparing the body's
first bytes with the prefix it expects, instead of decoding 100 KB of JSON per report (that
decoding was the largest single cost of the worker). The sandbox builds each body from one dict,
so no key appears twice and nothing later in the body can override the stamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wats.queue.item import encode_report

__all__ = [
    "STAMPED_FIELDS",
    "carries_stamp",
    "restamped_id",
    "stamp_fields",
    "stamped_body",
    "stamped_prefix",
]

STAMPED_FIELDS: tuple[str, ...] = ("id", "machineName", "location", "purpose")
"""The WSJF fields the pipeline sets on every report, in the order they are written."""


def stamp_fields(report_id: str, station: Mapping[str, Any]) -> dict[str, Any]:
    """The stamped fields of a report: ``station`` is ``{name, location, purpose}``."""
    return {
        "id": report_id,
        "machineName": station["name"],
        "location": station["location"],
        "purpose": station["purpose"],
    }


def stamped_body(report: Mapping[str, Any], report_id: str, station: Mapping[str, Any]) -> bytes:
    """The queue body of ``report`` (a WSJF dict) with the stamp first: compact UTF-8 JSON."""
    body = stamp_fields(report_id, station)
    body.update((key, value) for key, value in report.items() if key not in body)
    return encode_report(body)


def stamped_prefix(report_id: str, station: Mapping[str, Any]) -> bytes:
    """The bytes every body stamped with this id and station starts with."""
    return encode_report(stamp_fields(report_id, station))[:-1] + b","


def carries_stamp(body: bytes, report_id: str, station: Mapping[str, Any]) -> bool:
    """True when ``body`` is a JSON object written by :func:`stamped_body` for this id and
    station (its stamp first, and closed)."""
    prefix = stamped_prefix(report_id, station)
    return len(body) > len(prefix) and body.startswith(prefix) and body.endswith(b"}")


def restamped_id(body: bytes, old_id: str, new_id: str, station: Mapping[str, Any]) -> bytes:
    """``body`` (stamped with ``old_id`` and ``station``) stamped with ``new_id`` instead: the
    report a converter worker queues under its derived id after an id conflict. Only the stamp
    changes, so nothing of the report needs decoding; ``ValueError`` if ``body`` does not carry
    that stamp."""
    old = stamped_prefix(old_id, station)
    if not carries_stamp(body, old_id, station):
        raise ValueError("the body does not carry the stamp it is to be restamped from")
    return stamped_prefix(new_id, station) + body[len(old) :]
