"""Limits read off OpenHTF validator texts (the OpenHTF converter's limit parser).

OpenHTF records a measurement's validators only as their ``str()``: ``"0 <= x <= 10"`` for
``in_range``, ``"x == 5"`` for a numeric ``equals``, ``"'x' matches /^text$/"`` for a string
``equals``, ``"'x' is within 5% of 3.3. Marginal: None% of 3.3"`` for ``within_percent``.
These functions turn the forms OpenHTF's own validators write into a WATS compOp and limits.
Anything else (custom validators, real regexes) gives None: the caller logs the value and keeps
the validator text. Statuses are never derived from these limits; the record states them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from wats.api.models import CompOp

__all__ = ["Limits", "finite", "is_number", "numeric_limits", "string_limit"]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(
    rf"^\s*(?:(?P<low>{_NUMBER})\s*<=\s*)?(?:Marginal:\s*(?P<mlow>{_NUMBER})\s*<=\s*)?x"
    rf"(?:\s*<=\s*Marginal:\s*(?P<mhigh>{_NUMBER}))?(?:\s*<=\s*(?P<high>{_NUMBER}))?\s*$"
)
_EQUALS_NUMBER = re.compile(rf"^\s*x\s*==\s*(?P<value>{_NUMBER})\s*$")
_WITHIN_PERCENT = re.compile(
    rf"^'x' is within (?P<percent>{_NUMBER})% of (?P<expected>{_NUMBER})\.(?: Marginal:.*)?$"
)
_MATCHES = re.compile(r"^'x' matches /(?P<regex>.*)/$", re.DOTALL)
_EQUALS_TEXT = re.compile(r"^'x' is equal to '(?P<value>.*)'$", re.DOTALL)
_REGEX_SPECIAL = frozenset(".^$*+?{}[]|()")


@dataclass(frozen=True)
class Limits:
    """A WATS comparison: the operator and the limits it uses (single-limit ops use ``low``)."""

    comp_op: CompOp
    low: float | None = None
    high: float | None = None


def numeric_limits(validators: list[str]) -> Limits | None:
    """Limits of the first validator written in a known numeric form, else None.

    ``a <= x <= b`` → GELE a..b, ``a <= x`` → GE a, ``x <= b`` → LE b (marginal bounds are
    left in the text), ``x == v`` → EQ v, within p% of e → GELE e-|e*p/100|..e+|e*p/100|.
    """
    for text in validators:
        if matched := _RANGE.match(text):
            low, high = finite(matched["low"]), finite(matched["high"])
            if low is not None and high is not None:
                return Limits(CompOp.GELE, low, high)
            if low is not None:
                return Limits(CompOp.GE, low)
            if high is not None:
                return Limits(CompOp.LE, high)
        elif matched := _EQUALS_NUMBER.match(text):
            if (value := finite(matched["value"])) is not None:
                return Limits(CompOp.EQ, value)
        elif matched := _WITHIN_PERCENT.match(text):
            expected, percent = finite(matched["expected"]), finite(matched["percent"])
            if expected is not None and percent is not None:
                spread = abs(expected * percent / 100.0)
                return Limits(CompOp.GELE, expected - spread, expected + spread)
    return None


def string_limit(validators: list[str]) -> str | None:
    """The expected text of the first exact-match validator, else None.

    OpenHTF turns ``equals("text")`` into the regex ``^text$`` (escaped), written as
    ``'x' matches /^text$/``; ``Equals`` of other types is written ``'x' is equal to 'v'``.
    """
    for text in validators:
        if matched := _EQUALS_TEXT.match(text):
            return matched["value"]
        if (matched := _MATCHES.match(text)) and (literal := _anchored_literal(matched["regex"])):
            return literal
    return None


def _anchored_literal(regex: str) -> str | None:
    """The literal text of ``^escaped-text$``, or None if the regex is a real pattern.

    Checked by scanning rather than by comparing with ``re.escape``: Python versions escape
    different sets of characters, and the record may come from any of them.
    """
    if len(regex) < 2 or not regex.startswith("^") or not regex.endswith("$"):
        return None
    body, out, index = regex[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            if index + 1 >= len(body) or body[index + 1].isalnum():
                return None  # \d, \w, ... are classes, not escaped literals
            out.append(body[index + 1])
            index += 2
            continue
        if char in _REGEX_SPECIAL:
            return None
        out.append(char)
        index += 1
    return "".join(out)


def is_number(value: Any) -> bool:
    """True for JSON numbers (bool excluded: JSON true is not a measurement value of 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def finite(value: Any) -> float | None:
    """``value`` as a finite float (numbers and numeric text), else None.

    NaN and infinities (Python's JSON writes them) and numbers beyond float range give None:
    WATS reports are JSON without NaN.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None
