"""Shared pieces of the ATML converter: element lookup by local name, TestStand numbers and
times, and the outcome → status mapping.

Elements are matched by local name so one reader serves ATML 2.02, 5.00 and 6.01, whose
namespaces differ but whose shapes (for what we read) do not. The caller has already checked
the document's root namespace, so a local name here cannot belong to some unrelated format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from xml.etree.ElementTree import Element

from wats.api.models import StepBase, StepStatus
from wats.xmlsafe import local_name

__all__ = [
    "NAME_LIMIT",
    "AtmlError",
    "WalkState",
    "attr_value",
    "child",
    "children",
    "describe",
    "find",
    "flag",
    "given",
    "int_value",
    "outcome_status",
    "parse_number",
    "parse_time",
    "short",
    "text_of",
]

NAME_LIMIT = 100
"""WATS caps step names, misc infos and header texts at 100 characters."""

# ATML OutcomeValue tokens (and TestStand's NotStarted) → WATS step status.
_OUTCOMES: dict[str, StepStatus] = {
    "passed": StepStatus.PASSED,
    "failed": StepStatus.FAILED,
    "error": StepStatus.ERROR,
    "errored": StepStatus.ERROR,
    "timeout": StepStatus.ERROR,
    "done": StepStatus.DONE,
    "skipped": StepStatus.SKIPPED,
    "notstarted": StepStatus.SKIPPED,
    "terminated": StepStatus.TERMINATED,
    "aborted": StepStatus.TERMINATED,
}


class AtmlError(ValueError):
    """Content we cannot map; the message says which element and what is wrong."""


@dataclass
class WalkState:
    """Per-report bookkeeping while one result tree is walked."""

    tz: tzinfo
    """Offset given to times that carry none (the station's local offset)."""
    warnings: list[str] = field(default_factory=list)
    by_result_id: dict[str, StepBase] = field(default_factory=dict)
    """ATML result ``ID`` → step, so the critical failure stack can point at its step."""
    guessed: bool = False
    """Something had to be guessed (an unknown outcome token, say): lowers confidence."""

    def warn(self, message: str) -> None:
        """Record a warning once."""
        if message not in self.warnings:
            self.warnings.append(message)


# -- element helpers ---------------------------------------------------------------------------


def children(element: Element | None, name: str) -> list[Element]:
    """Direct children with local name ``name``, whatever their namespace ([] for None)."""
    if element is None:
        return []
    return [item for item in element if local_name(item.tag) == name]


def child(element: Element | None, name: str) -> Element | None:
    """The first direct child with local name ``name``, or None."""
    if element is None:
        return None
    for item in element:
        if local_name(item.tag) == name:
            return item
    return None


def find(element: Element | None, *names: str) -> Element | None:
    """Follow a path of local names from ``element``; None as soon as a step is missing."""
    for name in names:
        element = child(element, name)
    return element


def text_of(element: Element | None) -> str:
    """The element's stripped text ('' for a missing element)."""
    if element is None or element.text is None:
        return ""
    return element.text.strip()


def attr_value(element: Element | None) -> str | None:
    return None if element is None else element.get("value")


def describe(element: Element) -> str:
    """How a message names an element: ``<Test> 'Video Test' (ID 43)``."""
    parts = [f"<{local_name(element.tag)}>"]
    name = (element.get("name") or "").rpartition("#")[2]
    if name:
        parts.append(repr(short(name, 60)))
    if element.get("ID"):
        parts.append(f"(ID {element.get('ID')})")
    return " ".join(parts)


def short(text: str, limit: int = NAME_LIMIT) -> str:
    """``text`` cut to ``limit`` characters (WATS refuses longer names)."""
    return text if len(text) <= limit else text[:limit]


def given(**fields: Any) -> dict[str, Any]:
    """Only the fields that have a value, so the WSJF carries no empty keys."""
    return {key: value for key, value in fields.items() if value is not None}


# -- values -------------------------------------------------------------------------------------


def parse_number(text: str | None, where: str) -> float | None:
    """A TestStand number: decimal, ``0x`` hex, or an infinity/NaN word (given back as None,
    because WSJF numbers must be finite). Missing text is None; anything else is an error."""
    if text is None:
        return None
    token = text.strip()
    if not token:
        return None
    lowered = token.lower()
    try:
        if lowered.startswith(("0x", "-0x", "+0x")):
            number = float(int(lowered, 16))
        else:
            number = float(token)
    except ValueError:
        if lowered.lstrip("+-") in ("inf", "infinity", "nan", "ind", "positiveinfinity"):
            return None
        if lowered == "negativeinfinity":
            return None
        raise AtmlError(f"{where}: {token[:40]!r} is not a number") from None
    return number if math.isfinite(number) else None


def parse_time(text: str | None, tz: tzinfo) -> tuple[datetime | None, bool]:
    """An ATML ``xs:dateTime`` and whether it carried its own offset; ``tz`` fills in one that
    did not. (None, False) for missing or unreadable text."""
    if not text:
        return None, False
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None, False
    if moment.tzinfo is None:
        return moment.replace(tzinfo=tz), False
    return moment, True


def int_value(element: Element | None) -> int | None:
    raw = attr_value(element)
    if raw is None:
        raw = text_of(element) or None
    if raw is None:
        return None
    try:
        return int(float(raw))
    except (ValueError, OverflowError):
        return None


def flag(element: Element | None) -> bool:
    return (attr_value(element) or text_of(element)).strip().lower() == "true"


# -- outcomes -----------------------------------------------------------------------------------


def outcome_status(outcome: Element | None, state: WalkState, where: str) -> StepStatus | None:
    """The status an ``<Outcome>``/``<ActionOutcome>`` states; None if there is none.

    ``UserDefined`` and ``Aborted`` defer to their ``qualifier`` (TestStand writes skipped steps
    as ``Aborted``/``UserDefined`` qualified ``Skipped``); a qualifier ``Error`` always means
    error. A token we do not know becomes Done, with a warning.
    """
    if outcome is None:
        return None
    value = (outcome.get("value") or "").strip()
    qualifier = (outcome.get("qualifier") or "").strip()
    if qualifier.lower() == "error":
        return StepStatus.ERROR
    if value.lower() in ("userdefined", "aborted") and qualifier.lower() in _OUTCOMES:
        return _OUTCOMES[qualifier.lower()]
    status = _OUTCOMES.get(value.lower())
    if status is None:
        state.guessed = True
        state.warn(f"{where}: outcome {value or '(empty)'!r} is not an ATML outcome; kept as Done")
        return StepStatus.DONE
    return status
