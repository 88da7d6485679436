"""Scheduled converters: the cron parser (wats.config.cron) and the slot logic
(wats.converters.schedule), with fixed times — no clocks, no sleeping."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wats.config.cron import CronExpression, check_cron
from wats.config.models import ConverterConfig
from wats.converters.schedule import (
    STATE_FILE,
    ScheduledRuns,
    is_scheduled,
    last_due,
    next_run,
    slot_stamp,
)


def conv(**fields: Any) -> ConverterConfig:
    base = {"name": "sched", "converter": "wsjf", "watch_folder": "/x", "kind": "scheduled"}
    return ConverterConfig.model_validate({**base, **fields})


def cron(expression: str) -> ConverterConfig:
    return conv(cron=expression)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- parsing ------------------------------------------------------------------------------------


def test_fields_expand_lists_ranges_steps_and_names() -> None:
    parsed = CronExpression.parse("*/15 6-8,20 1,15 jan-mar mon-fri")
    assert parsed.minutes == {0, 15, 30, 45}
    assert parsed.hours == {6, 7, 8, 20}
    assert parsed.days == {1, 15}
    assert parsed.months == {1, 2, 3}
    assert parsed.weekdays == {1, 2, 3, 4, 5}


def test_a_start_with_a_step_runs_to_the_end_of_the_field() -> None:
    assert CronExpression.parse("5/20 * * * *").minutes == {5, 25, 45}
    assert CronExpression.parse("0 1-10/4 * * *").hours == {1, 5, 9}


def test_sunday_is_both_0_and_7_and_names_ignore_case() -> None:
    assert CronExpression.parse("0 0 * * 7").weekdays == {0}
    assert CronExpression.parse("0 0 * * SAT-7").weekdays == {6, 0}
    assert CronExpression.parse("0 0 * DEC Sun").months == {12}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "5 fields"),
        ("* * * * * *", "5 fields"),
        ("60 * * * *", "minute field: 60 is outside 0-59"),
        ("* 24 * * *", "hour field: 24 is outside 0-23"),
        ("* * 0 * *", "day of month field: 0 is outside 1-31"),
        ("* * * 13 *", "month field: 13 is outside 1-12"),
        ("* * * * 8", "day of week field: 8 is outside 0-7"),
        ("*/0 * * * *", "step '0' must be a positive number"),
        ("1-5/x * * * *", "step 'x' must be a positive number"),
        ("5-1 * * * *", "range '5-1' runs backwards"),
        ("* * * * fri-mon", "range 'fri-mon' runs backwards"),
        ("x * * * *", "minute field: 'x' is not a number"),
        ("1,,2 * * * *", "minute field: '' is not a number"),
        ("* * * foo *", "month field: 'foo' is not a number"),
    ],
)
def test_bad_expressions_name_the_field_that_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CronExpression.parse(expression)


def test_config_validation_uses_the_same_parser() -> None:
    assert check_cron("  0  12 * *  mon ") == "0 12 * * mon"
    with pytest.raises(ValueError, match="hour field"):
        cron("0 25 * * *")


# -- next run (cron) ----------------------------------------------------------------------------


def test_next_run_is_strictly_after_and_on_the_minute() -> None:
    every_quarter = cron("*/15 * * * *")
    assert next_run(every_quarter, at("2024-05-01T10:00:00")) == at("2024-05-01T10:15")
    assert next_run(every_quarter, at("2024-05-01T10:14:59.5")) == at("2024-05-01T10:15")
    assert next_run(every_quarter, at("2024-05-01T10:59")) == at("2024-05-01T11:00")


def test_next_run_crosses_day_month_and_year_ends() -> None:
    nightly = cron("30 2 * * *")
    assert next_run(nightly, at("2024-01-31T03:00")) == at("2024-02-01T02:30")
    assert next_run(nightly, at("2024-12-31T02:30")) == at("2025-01-01T02:30")
    month_end = cron("0 0 31 * *")
    assert next_run(month_end, at("2024-04-01T00:00")) == at("2024-05-31T00:00")  # no 31 April
    leap = cron("0 12 29 feb *")
    assert next_run(leap, at("2024-03-01T00:00")) == at("2028-02-29T12:00")
    new_year = cron("0 0 1 jan *")
    assert next_run(new_year, at("2024-06-15T08:00")) == at("2025-01-01T00:00")


def test_weekday_schedules_skip_the_weekend() -> None:
    shifts = cron("*/15 6-22 * * mon-fri")
    friday_late = at("2024-05-03T22:45")  # a Friday
    assert next_run(shifts, friday_late) == at("2024-05-06T06:00")  # Monday


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    first_or_monday = cron("0 9 1 * mon")
    after = at("2024-05-01T09:00")  # Wednesday the 1st, already run
    assert next_run(first_or_monday, after) == at("2024-05-06T09:00")  # a Monday
    assert next_run(first_or_monday, at("2024-05-27T10:00")) == at("2024-06-01T09:00")  # a Sat


def test_a_star_day_field_means_both_must_match() -> None:
    odd_mondays = cron("0 9 */2 * mon")  # day-of-month starts with *: AND, as in Vixie cron
    assert next_run(odd_mondays, at("2024-05-01T00:00")) == at("2024-05-13T09:00")


def test_a_date_that_never_comes_has_no_next_run() -> None:
    assert next_run(cron("0 0 30 feb *"), at("2024-01-01T00:00")) is None


def test_aware_times_give_aware_local_answers() -> None:
    after = at("2024-05-01T10:07").astimezone()
    slot = next_run(cron("*/15 * * * *"), after)
    assert slot is not None and slot.tzinfo is not None
    assert slot.replace(tzinfo=None) == at("2024-05-01T10:15")


def test_last_fired_looks_back_across_a_year_end() -> None:
    parsed = CronExpression.parse("0 18 * * fri")
    assert parsed.last_at_or_before(at("2025-01-02T12:00")) == at("2024-12-27T18:00")
    assert parsed.last_at_or_before(at("2024-12-27T18:00")) == at("2024-12-27T18:00")


# -- intervals and missed slots -----------------------------------------------------------------


def test_interval_runs_after_the_interval_or_on_the_anchors_grid() -> None:
    every_10 = conv(schedule_interval_seconds=10)
    start = at("2024-05-01T10:00:00")
    assert next_run(every_10, start) == at("2024-05-01T10:00:10")
    assert next_run(every_10, at("2024-05-01T10:00:25"), anchor=start) == at("2024-05-01T10:00:30")
    assert next_run(every_10, at("2024-05-01T10:00:30"), anchor=start) == at("2024-05-01T10:00:40")


def test_last_due_is_the_latest_slot_since_the_last_run() -> None:
    every_10 = conv(schedule_interval_seconds=10)
    start = at("2024-05-01T10:00:00")
    assert last_due(every_10, start, at("2024-05-01T10:00:09")) is None
    assert last_due(every_10, start, at("2024-05-01T10:00:35")) == at("2024-05-01T10:00:30")
    hourly = cron("0 * * * *")
    assert last_due(hourly, at("2024-05-01T10:00"), at("2024-05-01T10:59")) is None
    assert last_due(hourly, at("2024-05-01T10:00"), at("2024-05-03T07:30")) == at(
        "2024-05-03T07:00"
    )


def test_which_converters_are_scheduled() -> None:
    assert is_scheduled(conv(schedule_interval_seconds=5))
    assert is_scheduled(conv(kind=None, cron="0 * * * *"))
    assert not is_scheduled(conv(kind=None))
    assert not is_scheduled(conv(kind="file", schedule_interval_seconds=5))


def test_slot_stamp_is_a_file_name() -> None:
    assert slot_stamp(at("2024-05-01T10:15:00+02:00")) == "20240501T101500"


# -- ScheduledRuns: what ran survives a restart -------------------------------------------------


def local(text: str) -> datetime:
    return at(text).astimezone()


def test_first_start_runs_nothing_unless_run_on_startup(tmp_path: Path) -> None:
    now = local("2024-05-01T10:00:00")
    quiet = ScheduledRuns(conv(schedule_interval_seconds=60), tmp_path / "a", now)
    assert quiet.startup(now) is None
    assert quiet.next_time(now) == now + timedelta(seconds=60)
    eager = ScheduledRuns(
        conv(schedule_interval_seconds=60, run_on_startup=True), tmp_path / "b", now
    )
    assert eager.startup(now + timedelta(microseconds=5)) == now


def test_a_completed_slot_is_not_run_again_after_a_restart(tmp_path: Path) -> None:
    cfg = cron("*/15 * * * *")
    now = local("2024-05-01T10:15:02")
    runs = ScheduledRuns(cfg, tmp_path, local("2024-05-01T10:00:00"))
    slot = runs.due(now)
    assert slot == local("2024-05-01T10:15")
    runs.begin(slot)
    runs.finish(slot)
    again = ScheduledRuns(cfg, tmp_path)
    assert again.due(now + timedelta(minutes=5)) is None
    assert again.next_time(now) == local("2024-05-01T10:30")


def test_slots_missed_while_down_run_once_as_the_latest(tmp_path: Path) -> None:
    cfg = cron("*/15 * * * *")
    runs = ScheduledRuns(cfg, tmp_path, local("2024-05-01T09:00"))
    runs.begin(local("2024-05-01T10:00"))
    runs.finish(local("2024-05-01T10:00"))
    restarted = ScheduledRuns(cfg, tmp_path)
    later = local("2024-05-01T13:20")
    slot = restarted.startup(later)
    assert slot == local("2024-05-01T13:15")
    restarted.begin(slot)
    restarted.finish(slot)
    assert restarted.due(later) is None  # the other eleven missed slots are not run


def test_an_interrupted_slot_is_run_again_with_the_same_time(tmp_path: Path) -> None:
    cfg = conv(schedule_interval_seconds=60, run_on_startup=True, max_worker_deaths=2)
    first = local("2024-05-01T10:00:00")
    runs = ScheduledRuns(cfg, tmp_path, first)
    slot = runs.startup(first)
    assert runs.begin(slot).attempt == 1  # ...and the worker is killed
    restarted = ScheduledRuns(cfg, tmp_path)
    assert restarted.startup(first + timedelta(hours=1)) == slot
    assert restarted.begin(slot).attempt == 2  # killed again
    third = ScheduledRuns(cfg, tmp_path)
    start = third.begin(third.startup(first + timedelta(hours=2)))
    assert start.gave_up and start.slot == slot  # max_worker_deaths reached: poison, no loop


def test_a_run_that_failed_while_the_worker_lived_does_not_count(tmp_path: Path) -> None:
    cfg = conv(schedule_interval_seconds=60, max_worker_deaths=1)
    now = local("2024-05-01T10:00:00")
    runs = ScheduledRuns(cfg, tmp_path, now)
    slot = now + timedelta(minutes=1)
    for _ in range(3):
        start = runs.begin(slot)
        assert not start.gave_up and start.attempt == 1
        runs.not_counted(slot)
    assert ScheduledRuns(cfg, tmp_path).due(now) == slot  # still begun: run again


def test_the_state_file_is_json_and_a_broken_one_starts_afresh(tmp_path: Path) -> None:
    now = local("2024-05-01T10:00:00")
    runs = ScheduledRuns(conv(schedule_interval_seconds=60), tmp_path, now)
    runs.begin(now)
    runs.finish(now)
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert datetime.fromisoformat(state["completed"]) == now and state["started"] is None
    (tmp_path / STATE_FILE).write_text("{not json")
    fresh = ScheduledRuns(conv(schedule_interval_seconds=60), tmp_path, now)
    assert fresh.completed is None and fresh.due(now) is None
