"""Report- and step-level attachments of data: misc infos, assets, binary data, attachments,
charts, loop information and additional data."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import Field, field_validator

from wats.api.models._base import DefaultsDumped, ShortText, WatsModel
from wats.api.models.enums import ChartType


def _check_base64(value: str) -> None:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be base64-encoded") from exc


def _format_number(value: float) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


class MiscInfo(WatsModel):
    """A free key/value on the report header (`miscInfos[]`), e.g. firmware version."""

    description: ShortText
    text: ShortText | None = None
    numeric: int | float | None = None
    typedef: str | None = None


class Asset(WatsModel):
    """A piece of test equipment used for the report (`assets[]`), counted by WATS."""

    sn: str
    usage_count: int | None = None


class BinaryData(WatsModel):
    """A report-level binary payload (`binaryData[]`), base64 in `data`."""

    content_type: str
    data: str
    name: str | None = None

    @field_validator("data")
    @classmethod
    def _data_is_base64(cls, value: str) -> str:
        _check_base64(value)
        return value

    @classmethod
    def from_bytes(cls, name: str, payload: bytes, content_type: str) -> BinaryData:
        """Encode raw bytes; the wire carries base64."""
        return cls(name=name, content_type=content_type, data=base64.b64encode(payload).decode())

    def payload(self) -> bytes:
        """The decoded bytes."""
        return base64.b64decode(self.data)


class Attachment(WatsModel):
    """A file attached to a step (`attachment`), base64 in `data`."""

    name: ShortText
    content_type: str
    data: str
    description: str | None = None

    @field_validator("data")
    @classmethod
    def _data_is_base64(cls, value: str) -> str:
        _check_base64(value)
        return value

    @classmethod
    def from_bytes(
        cls, name: str, payload: bytes, content_type: str, description: str | None = None
    ) -> Attachment:
        """Encode raw bytes; the wire carries base64."""
        return cls(
            name=name,
            content_type=content_type,
            data=base64.b64encode(payload).decode(),
            description=description,
        )

    def payload(self) -> bytes:
        """The decoded bytes."""
        return base64.b64decode(self.data)


class ChartSeries(WatsModel):
    """One curve of a chart; `xdata`/`ydata` are `;`-separated numbers as WATS stores them."""

    data_type: str | None = None
    name: str | None = None
    xdata: str | None = None
    ydata: str | None = None

    @staticmethod
    def encode(values: list[float]) -> str:
        """The WSJF text of a list of numbers."""
        return ";".join(_format_number(v) for v in values)

    def x_values(self) -> list[float]:
        """`xdata` as numbers."""
        return [float(v) for v in (self.xdata or "").split(";") if v]

    def y_values(self) -> list[float]:
        """`ydata` as numbers."""
        return [float(v) for v in (self.ydata or "").split(";") if v]


class Chart(DefaultsDumped):
    """A chart on a step (`chart`)."""

    chart_type: ChartType = ChartType.LINE
    label: str | None = None
    x_label: str | None = None
    x_unit: str | None = None
    y_label: str | None = None
    y_unit: str | None = None
    series: list[ChartSeries] = Field(default_factory=list)

    _always_dump = ("chart_type", "series")


class LoopInfo(WatsModel):
    """Loop bookkeeping of a step run in a loop (`loop`): a summary or one iteration."""

    idx: int | None = None
    num: int | None = None
    ending_index: int | None = None
    passed: int | None = None
    failed: int | None = None


class SequenceCallInfo(WatsModel):
    """Which sequence a sequence-call step called (`seqCall`)."""

    path: str | None = None
    name: str | None = None
    version: str | None = None


class AdditionalData(WatsModel):
    """A named block of structured extra data (`additionalData[]`); kept as given."""

    name: str | None = None
    props: list[dict[str, Any]] | None = None
