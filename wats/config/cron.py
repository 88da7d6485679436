"""Five-field cron expressions: the one parser, used by config validation and the scheduler.

Why hand-written: the subset sites use (``*``, lists, ranges, steps, English names) is small,
and one parser shared by ``config validate`` and ``wats.converters.schedule`` guarantees that
an expression the config accepts is exactly the one that runs. Semantics follow the classic
(Vixie) cron: fields are minute, hour, day of month, month, day of week (0 or 7 = Sunday);
``N/S`` means ``N-max/S``; when both day fields are restricted a day matching EITHER runs, and
when one of them starts with ``*`` both must match. Times are local wall-clock times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["CronExpression", "check_cron"]

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name in messages, lowest, highest, names) of the five fields, in order.
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
# Long enough for the rarest satisfiable date (29 February on a given weekday: 28 years).
_SEARCH_YEARS = 30
_MINUTE = timedelta(minutes=1)


def _value(text: str, what: str, low: int, high: int, names: tuple[str, ...]) -> int:
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + (1 if names is _MONTHS else 0)
    if not text.isdigit():
        raise ValueError(f"{what} field: {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{what} field: {value} is outside {low}-{high}")
    return value


def _field(text: str, what: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        if slash and (not step_text.isdigit() or int(step_text) == 0):
            raise ValueError(f"{what} field: step {step_text!r} must be a positive number")
        step = int(step_text) if slash else 1
        if base == "*":
            start, end = low, high
        else:
            first, dash, last = base.partition("-")
            start = _value(first, what, low, high, names)
            end = _value(last, what, low, high, names) if dash else (high if slash else start)
            if end < start:
                raise ValueError(f"{what} field: range {base!r} runs backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronExpression:
    """A parsed expression: the allowed values of each field, and when it next/last fires.

    ``next_after``/``last_at_or_before`` work on local wall-clock time at minute resolution: a
    naive datetime is taken as local time and a naive one is returned; an aware one is
    converted to local time and the answer is aware (local). A slot inside a daylight-saving
    gap lands where the operating system puts that wall-clock time.
    """

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday (7 is folded into 0)
    any_day: bool  # the day-of-month field starts with "*"
    any_weekday: bool  # the day-of-week field starts with "*"

    @classmethod
    def parse(cls, expression: str) -> CronExpression:
        """Parse ``expression``; ``ValueError`` names the field that is wrong."""
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(
                f"a cron expression has 5 fields (minute hour day month weekday), got {len(fields)}"
            )
        sets = [
            _field(text, what, low, high, names)
            for text, (what, low, high, names) in zip(fields, _FIELDS, strict=True)
        ]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(
            text=" ".join(fields),
            minutes=sets[0],
            hours=sets[1],
            days=sets[2],
            months=sets[3],
            weekdays=weekdays,
            any_day=fields[2].startswith("*"),
            any_weekday=fields[4].startswith("*"),
        )

    def day_matches(self, when: datetime) -> bool:
        """The day-of-month / day-of-week rule: either one when both are restricted."""
        by_date = when.day in self.days
        by_weekday = when.isoweekday() % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return by_date and by_weekday
        return by_date or by_weekday

    def matches(self, when: datetime) -> bool:
        """Whether the expression fires in the minute of ``when`` (wall-clock fields)."""
        return (
            when.month in self.months
            and self.day_matches(when)
            and when.hour in self.hours
            and when.minute in self.minutes
        )

    def next_after(self, after: datetime) -> datetime | None:
        """The first firing minute strictly after ``after``; None if it never fires
        (``0 0 30 2 *``)."""
        aware = after.tzinfo is not None
        t = _wall(after).replace(second=0, microsecond=0) + _MINUTE
        limit = t.year + _SEARCH_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self.day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += _MINUTE
            else:
                return t.astimezone() if aware else t
        return None

    def last_at_or_before(self, when: datetime) -> datetime | None:
        """The latest firing minute at or before ``when``; None if none in 30 years."""
        aware = when.tzinfo is not None
        t = _wall(when).replace(second=0, microsecond=0)
        limit = t.year - _SEARCH_YEARS
        while t.year >= limit:
            if t.month not in self.months:
                t = t.replace(day=1, hour=0, minute=0) - _MINUTE
            elif not self.day_matches(t):
                t = t.replace(hour=0, minute=0) - _MINUTE
            elif t.hour not in self.hours:
                t = t.replace(minute=0) - _MINUTE
            elif t.minute not in self.minutes:
                t -= _MINUTE
            else:
                return t.astimezone() if aware else t
        return None


def _wall(when: datetime) -> datetime:
    """Local wall-clock time without a zone (naive input is already local)."""
    return when.astimezone().replace(tzinfo=None) if when.tzinfo is not None else when


def check_cron(expression: str) -> str:
    """Check a 5-field cron expression (minute hour day-of-month month day-of-week).

    Each field is ``*`` or a comma list of ``N`` / ``N-M``, each optionally ``/STEP``; months
    and weekdays may be given by their English three-letter names. Returns it normalised
    (single spaces); ``ValueError`` names the field that is wrong.
    """
    return CronExpression.parse(expression).text
