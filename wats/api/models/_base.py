"""Shared building blocks of the report models: the base model and constrained field types.

Every model allows extra fields (``extra="allow"``): WATS servers add fields over versions, and
a report that passes through us must reach the server with them intact. Wire names are WATS's
camelCase (generated from the snake_case attribute, or given explicitly where WATS's casing is
irregular); either name is accepted on input (``populate_by_name``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

FORBIDDEN_IDENTIFIER_CHARS = "*%?[]^!/\\"
"""Characters WATS refuses in serial and part numbers."""


class WatsModel(BaseModel):
    """Base of every WSJF object: camelCase aliases, unknown fields kept.

    No Python-level validator runs here: every model instance of a report (hundreds per report)
    would pay for it. Models that need defaults written out derive from :class:`DefaultsDumped`.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        alias_generator=to_camel,
        serialize_by_alias=True,
    )


class DefaultsDumped(WatsModel):
    """A WSJF object with defaults WATS needs written out.

    ``_always_dump`` names fields whose default must be sent even when the caller did not set it
    (reports are dumped with ``exclude_unset`` so what was parsed is exactly what comes out); they
    are marked as set once the instance is validated. Kept out of :class:`WatsModel` so models
    without such fields skip the Python call.
    """

    _always_dump: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _mark_required_defaults_set(self) -> Any:
        self.__pydantic_fields_set__.update(self._always_dump)
        return self


def _check_identifier(value: str) -> str:
    found = sorted({c for c in value if c in FORBIDDEN_IDENTIFIER_CHARS})
    if found:
        raise ValueError(
            f"must not contain any of {' '.join(FORBIDDEN_IDENTIFIER_CHARS)} "
            f"(found {' '.join(found)})"
        )
    return value


Text100 = Annotated[str, StringConstraints(min_length=1, max_length=100)]
"""A required header text: 1-100 characters."""

ShortText = Annotated[str, StringConstraints(max_length=100)]
"""An optional text WATS caps at 100 characters (step names, misc info)."""

Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(_check_identifier)
]
"""A serial or part number: 1-100 characters, none of ``* % ? [ ] ^ ! / \\``."""


class WatsDateTime(datetime):
    """A timezone-aware datetime that remembers the text it was parsed from.

    WATS writes 7 fractional digits (.NET ticks); Python keeps 6. Serialising the original text
    makes parse → dump exact. A value built in code (or changed) has no text and is written with
    ``isoformat()``.
    """

    wats_text: str | None = None

    @classmethod
    def from_text(cls, text: str) -> WatsDateTime:
        """Parse ISO 8601 text that must carry a UTC offset (``Z`` or ``±hh:mm``)."""
        try:
            # Built as this class directly (no intermediate datetime to copy from).
            result = cls.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"not an ISO 8601 date-time: {text!r}") from exc
        if result.tzinfo is None:
            raise ValueError(f"date-time must carry a UTC offset (e.g. +01:00 or Z): {text!r}")
        result.wats_text = text
        return result

    @classmethod
    def from_datetime(cls, value: datetime) -> WatsDateTime:
        """Wrap an aware datetime; naive datetimes are refused because WATS needs the offset."""
        if value.tzinfo is None:
            raise ValueError("date-time must carry a UTC offset (give a timezone-aware datetime)")
        return cls(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=value.tzinfo,
            fold=value.fold,
        )

    def to_text(self) -> str:
        """The WSJF text of this instant: the original text if there was one."""
        return self.wats_text or self.isoformat()

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # Keep the original text across copy, deepcopy and pickle.
        return (WatsDateTime.from_text, (self.to_text(),))


def _validate_timestamp(value: Any) -> WatsDateTime:
    # Text first: it is what every parsed report carries.
    if isinstance(value, str):
        return WatsDateTime.from_text(value)
    if isinstance(value, WatsDateTime):
        return value
    if isinstance(value, datetime):
        return WatsDateTime.from_datetime(value)
    raise ValueError(f"expected an ISO 8601 date-time string, got {type(value).__name__}")


def _serialize_timestamp(value: datetime) -> str:
    if isinstance(value, WatsDateTime):
        return value.to_text()
    return value.isoformat()


Timestamp = Annotated[
    datetime,
    PlainValidator(_validate_timestamp, json_schema_input_type=str),
    PlainSerializer(_serialize_timestamp, return_type=str),
]
"""An ISO 8601 date-time with UTC offset, round-tripped to the exact original text."""
