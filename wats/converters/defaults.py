"""One rule for the header fields WATS requires and a file may leave empty.

WATS refuses a report without a part number, serial number, revision or process code, but
station formats do not always record them: TestStand's default process model writes no part
number, ATML names no operation, OpenHTF has no part-number field. Every built-in converter
that builds a header from a foreign format (ATML, TestStand XML, OpenHTF, CSV) fills such a
field the same way, through :class:`HeaderDefaults`:

- the value the file gives wins, exactly as recorded, and is still checked as WATS checks it:
  a serial or part number with a character WATS refuses, or any of the four over its length
  limit, fails the file naming the field (never rewritten: an altered serial files the result
  under another unit);
- a field the file leaves empty takes the converter's argument (``default_part_number``,
  ``default_serial_number``, ``default_revision``, ``process_code``). While the argument is at
  its built-in default, the report carries a warning naming the argument and the conversion's
  confidence is capped at :data:`DEFAULTED_CONFIDENCE`: nobody has yet said what the value
  should be. A value set in the config is the site's statement for that folder's files, so it
  is used silently (a warning on every file would teach people to ignore warnings);
- the serial number is the one field whose default is harmful as well as visible: every
  defaulted report lands on one unit (``UNKNOWN``), merging the histories of different units.
  It is still a default and not a refusal (DESIGN invariant 7: the result reaches the server,
  nothing is lost), but its confidence is capped at :data:`SERIAL_DEFAULTED_CONFIDENCE`, below
  the default alarm threshold, so each such file also raises ``file.alarm``.

The argument fields are declared with :func:`part_number_argument` and friends so the four
converters share their names, their checks (the same WATS limits, enforced when the config is
loaded) and their schema descriptions. WSJF and WSXF are WATS's own formats and are validated
as WATS validates them; this rule does not apply there (docs/converters/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from wats.api.models import FORBIDDEN_IDENTIFIER_CHARS

__all__ = [
    "DEFAULTED_CONFIDENCE",
    "FIELD_LIMIT",
    "SERIAL_DEFAULTED_CONFIDENCE",
    "DefaultIdentifier",
    "DefaultText",
    "HeaderDefaults",
    "HeaderField",
    "HeaderFieldError",
    "part_number_argument",
    "process_code_argument",
    "refusal",
    "revision_argument",
    "serial_number_argument",
]

DEFAULTED_CONFIDENCE = 0.8
"""The highest confidence of a conversion that filled a required header field from an argument
left at its built-in default: above the default alarm threshold (0.5), below a file (or a
configuration) that said everything itself."""

SERIAL_DEFAULTED_CONFIDENCE = 0.4
"""The cap when the serial number came from the built-in default: below the default alarm
threshold (0.5) and above the default reject threshold (0.2), so the report is delivered and
the file is flagged."""

FIELD_LIMIT = 100
"""WATS's length limit of the part number, serial number and revision."""


class HeaderField(StrEnum):
    """A header field WATS requires; the value is how messages name it."""

    PART_NUMBER = "part number"
    SERIAL_NUMBER = "serial number"
    REVISION = "revision"
    PROCESS_CODE = "process code"

    @property
    def argument(self) -> str:
        """The converter argument that supplies the field when the file leaves it empty."""
        return _ARGUMENTS[self]

    @property
    def is_identifier(self) -> bool:
        """Serial and part numbers: WATS also refuses some characters in them."""
        return self in (HeaderField.PART_NUMBER, HeaderField.SERIAL_NUMBER)


_ARGUMENTS = {
    HeaderField.PART_NUMBER: "default_part_number",
    HeaderField.SERIAL_NUMBER: "default_serial_number",
    HeaderField.REVISION: "default_revision",
    HeaderField.PROCESS_CODE: "process_code",
}


class HeaderFieldError(ValueError):
    """A required header field the report cannot have: a value WATS would refuse, or an empty
    field without a default. ``str()`` names the field and says what to do."""


def refusal(field: HeaderField, value: str) -> str | None:
    """Why WATS would refuse ``value`` for ``field``, or None when it would take it."""
    if field.is_identifier:
        found = sorted({c for c in value if c in FORBIDDEN_IDENTIFIER_CHARS})
        if found:
            return f"contains characters WATS refuses ({' '.join(found)})"
    if len(value) > FIELD_LIMIT:
        return f"is {len(value)} characters long; WATS allows {FIELD_LIMIT}"
    return None


def _wats_identifier(value: str) -> str:
    problem = refusal(HeaderField.PART_NUMBER, value)
    if problem is not None:
        raise ValueError(problem)
    return value


DefaultIdentifier = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=FIELD_LIMIT),
    AfterValidator(_wats_identifier),
]
"""A part or serial number argument: checked as WATS checks the field, when the config loads."""

DefaultText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=FIELD_LIMIT)
]
"""A revision argument: 1 to 100 characters."""


def part_number_argument(default: str = "UNKNOWN", **extra: Any) -> Any:
    """The ``default_part_number`` field of a converter's arguments."""
    return Field(
        default=default,
        description=(
            f"Part number of a report whose file names none (default {default!r}). Left at this "
            f"default, it comes with a warning and confidence capped at {DEFAULTED_CONFIDENCE}."
        ),
        **extra,
    )


def serial_number_argument(default: str = "UNKNOWN", **extra: Any) -> Any:
    """The ``default_serial_number`` field (see the module docstring for its lower cap)."""
    return Field(
        default=default,
        description=(
            f"Serial number of a report whose file names none (default {default!r}). Left at "
            f"this default, it comes with a warning and confidence capped at "
            f"{SERIAL_DEFAULTED_CONFIDENCE}, below the alarm threshold: every such report "
            "lands on one unit."
        ),
        **extra,
    )


def revision_argument(default: str, **extra: Any) -> Any:
    """The ``default_revision`` field of a converter's arguments."""
    return Field(
        default=default,
        description=(
            f"Revision of a report whose file names none (default {default!r}). Left at this "
            f"default, it comes with a warning and confidence capped at {DEFAULTED_CONFIDENCE}."
        ),
        **extra,
    )


def process_code_argument(default: int = 10, **extra: Any) -> Any:
    """The ``process_code`` field: the operation when the file names none WATS knows."""
    return Field(
        default=default,
        ge=0,
        description=(
            f"Process (test operation) code of a report whose file names none, or names one "
            f"the server's processes do not hold (default {default}, 'SW Debug'). Left at this "
            f"default, it comes with a warning and confidence capped at {DEFAULTED_CONFIDENCE}."
        ),
        **extra,
    )


@dataclass
class HeaderDefaults:
    """Fills one report's required header fields from the file, else from the arguments.

    ``arguments`` is the converter's validated arguments (it must have the field named by
    :attr:`HeaderField.argument` for every field asked); ``warn`` records a warning on the
    converter's own result. After the header is built, ``confidence`` is the cap the defaults
    put on the conversion (1.0 when the file gave every field).
    """

    arguments: BaseModel
    warn: Callable[[str], None]
    confidence: float = 1.0

    def text(self, field: HeaderField, given: str | None, where: str = "") -> str:
        """The file's value (``given``; None or blank means the file leaves the field empty),
        checked as WATS checks it, else the argument's. ``where`` names the spot in the file
        (``<UUT><SerialNumber>``, ``line 3``) for messages."""
        named = f"{field} ({where})" if where else str(field)
        if given is not None and given.strip():
            problem = refusal(field, given)
            if problem is not None:
                raise HeaderFieldError(
                    f"the {named} {given[:40]!r} {problem}; values are never rewritten (the "
                    f"result must stay with its unit), so fix it at the station"
                )
            return given
        default = getattr(self.arguments, field.argument)
        if default is None:
            raise HeaderFieldError(
                f"the file names no {named}; set the converter argument {field.argument} "
                f"to accept such files"
            )
        self._defaulted(f"the file names no {named}", field, repr(default))
        return str(default)

    def code(self, given: int | None, unusable: str = "") -> int:
        """The process code the file gives, else the ``process_code`` argument.

        ``unusable`` says why the file's (or the config's) own operation cannot be used - an
        operation name the server's processes do not hold. That is an anomaly, not a format
        that never records the field, so it warns and caps the confidence even when
        ``process_code`` is set in the config."""
        if given is not None:
            return given
        field = HeaderField.PROCESS_CODE
        default = int(getattr(self.arguments, field.argument))
        if unusable:
            self.warn(f"{unusable}; using process code {default} (argument {field.argument})")
            self.confidence = min(self.confidence, DEFAULTED_CONFIDENCE)
            return default
        self._defaulted(f"the file names no {field}", field, f"process code {default}")
        return default

    def _defaulted(self, what: str, field: HeaderField, shown: str) -> None:
        if field.argument in self.arguments.model_fields_set:
            return  # the site's own statement for this folder: nothing to warn about
        self.warn(f"{what}; using {shown} (the built-in default of argument {field.argument})")
        cap = (
            SERIAL_DEFAULTED_CONFIDENCE
            if field is HeaderField.SERIAL_NUMBER
            else DEFAULTED_CONFIDENCE
        )
        self.confidence = min(self.confidence, cap)
