"""Reading TestStand property trees (``<Prop Name=... Type=...><Value>...</Value></Prop>``).

TestStand writes every report value as a ``Prop`` element: objects nest further ``Prop``
children, arrays hold ``<Value ID='[i]'>`` children (next to an ``ArrayElementPrototype`` that
is only a template and never data), and scalars hold one ``<Value>``. These helpers answer
"the value at this dotted path, or None" and never raise on a missing or malformed node, because
a watch folder can hold anything and the converter must turn that into a clean failure message.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator

__all__ = [
    "array_values",
    "boolean",
    "first_prop",
    "integer",
    "number",
    "prop",
    "raw_number",
    "text",
]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
"""WATS stores error codes and indices as 32-bit integers; bigger values cannot be sent."""


def _children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    for child in element:
        if child.tag == "Prop" and child.get("Name") == name:
            yield child


def prop(element: ET.Element | None, path: str) -> ET.Element | None:
    """The ``Prop`` at a dotted ``path`` below ``element`` (``"TS.SequenceCall.ResultList"``),
    or None when any part is missing."""
    node = element
    for name in path.split("."):
        if node is None:
            return None
        node = next(_children(node, name), None)
    return node


def text(element: ET.Element | None, path: str | None = None) -> str | None:
    """The text of the ``<Value>`` of the ``Prop`` at ``path`` (of ``element`` itself without a
    path), stripped; None when the node or its value is absent. An empty value gives ``""``."""
    node = prop(element, path) if path else element
    if node is None:
        return None
    value = node.find("Value")
    if value is None:
        return None
    return (value.text or "").strip()


def number(element: ET.Element | None, path: str | None = None) -> float | None:
    """A ``Number`` value as a finite float; None when absent, unparsable or not finite.

    TestStand writes numbers with ``.`` unless the report option "use localized decimal point"
    is on, so a lone ``,`` is read as the decimal separator too.
    """
    raw = text(element, path)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        if raw.count(",") == 1 and "." not in raw:
            try:
                value = float(raw.replace(",", "."))
            except ValueError:
                return None
        else:
            return None
    return value if math.isfinite(value) else None


def raw_number(element: ET.Element | None, path: str | None = None) -> tuple[bool, float | None]:
    """(present, value): whether a ``Number`` value is written at all, and its finite value.

    Lets a caller tell "no measurement" from "a measurement of NaN/Inf", which WSJF cannot carry.
    """
    raw = text(element, path)
    return (bool(raw), number(element, path))


def integer(element: ET.Element | None, path: str | None = None) -> int | None:
    """A ``Number`` value as a 32-bit integer (fractions dropped); None when absent or out of
    range."""
    value = number(element, path)
    if value is None:
        return None
    whole = int(value)
    return whole if INT32_MIN <= whole <= INT32_MAX else None


def boolean(element: ET.Element | None, path: str | None = None) -> bool | None:
    """A ``Boolean`` value (``True``/``False``, any case); None when absent or anything else."""
    raw = text(element, path)
    if raw is None:
        return None
    folded = raw.casefold()
    if folded == "true":
        return True
    if folded == "false":
        return False
    return None


def array_values(element: ET.Element | None, path: str | None = None) -> list[ET.Element]:
    """The ``<Value ID='[i]'>`` elements of the array ``Prop`` at ``path`` (prototype left out)."""
    node = prop(element, path) if path else element
    if node is None:
        return []
    return node.findall("Value")


def first_prop(element: ET.Element) -> ET.Element | None:
    """The first ``Prop`` child of an element (an array element's object), or None."""
    return element.find("Prop")
