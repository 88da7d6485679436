"""The watcher's pure parts: readiness rules, pattern matching, scans, the keep-mode ledger."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from wats.workers.watcher import (
    KeepLedger,
    Observation,
    ReadinessTracker,
    WatchTarget,
    durable_copy,
    folder_signature,
    matches,
    scan_target,
)

F = Path("/w/a.json")
G = Path("/w/b.json")


def _target(tmp_path: Path, **overrides: object) -> WatchTarget:
    values: dict[str, object] = {
        "converter": "c",
        "kind": "file",
        "watch": tmp_path / "watch",
        "pending": tmp_path / "pending",
        "state": tmp_path / "state",
        "file_patterns": ("*.json",),
    }
    values.update(overrides)
    target = WatchTarget(**values)  # type: ignore[arg-type]
    target.watch.mkdir(parents=True, exist_ok=True)
    return target


# ---- readiness ------------------------------------------------------------------------------


def test_a_new_file_is_not_ready_before_the_debounce() -> None:
    tracker = ReadinessTracker(0.5)
    assert tracker.observe(F, (10, 1), now=100.0) is Observation.NEW
    assert tracker.due(100.4) == []
    assert not tracker.is_ready(F, 100.4)


def test_an_unchanged_file_is_ready_after_the_debounce() -> None:
    tracker = ReadinessTracker(0.5)
    tracker.observe(F, (10, 1), now=100.0)
    assert tracker.observe(F, (10, 1), now=100.5) is Observation.SAME
    assert tracker.due(100.5) == [F]
    assert tracker.is_ready(F, 100.5)


def test_a_growing_file_restarts_the_debounce() -> None:
    tracker = ReadinessTracker(0.5)
    tracker.observe(F, (10, 1), now=100.0)
    assert tracker.observe(F, (20, 2), now=100.4) is Observation.CHANGED
    assert tracker.due(100.6) == []
    assert tracker.next_deadline(100.6) == pytest.approx(100.9)
    assert tracker.due(100.9) == [F]


def test_a_closed_file_is_ready_at_once() -> None:
    tracker = ReadinessTracker(0.5)
    tracker.observe(F, (10, 1), now=100.0)
    tracker.mark_closed(F, now=100.0)
    assert tracker.due(100.0) == [F]
    assert tracker.next_deadline(100.0) is None


def test_a_write_after_the_close_means_the_writer_came_back() -> None:
    tracker = ReadinessTracker(0.5)
    tracker.observe(F, (10, 1), now=100.0)
    tracker.mark_closed(F, now=100.0)
    tracker.observe(F, (30, 3), now=100.1)
    assert tracker.due(100.2) == []


def test_a_taken_candidate_is_handed_out_once_until_released() -> None:
    tracker = ReadinessTracker(0.5)
    tracker.observe(F, (10, 1), now=100.0)
    tracker.mark_closed(F, now=100.0)
    tracker.take(F)
    assert tracker.is_taken(F)
    assert tracker.due(101.0) == []
    tracker.release(F, now=101.0)
    assert tracker.due(101.2) == []
    assert tracker.due(101.5) == [F]


def test_an_ineligible_folder_is_never_due_however_stable() -> None:
    tracker = ReadinessTracker(0.5)
    tracker.observe(F, (1, 1), now=100.0, eligible=False)
    assert tracker.due(1000.0) == []
    assert tracker.next_deadline(1000.0) is None
    tracker.observe(F, (1, 1), now=1000.0, eligible=True)
    assert tracker.due(1000.0) == [F]


def test_forgotten_candidates_are_gone() -> None:
    tracker = ReadinessTracker(0.5)
    tracker.observe(F, (1, 1), now=1.0)
    tracker.observe(G, (1, 1), now=1.0)
    tracker.forget(F)
    assert tracker.candidates() == [G]
    assert F not in tracker and len(tracker) == 1


def test_a_file_held_open_by_its_writer_outlasts_the_debounce() -> None:
    # A writer that pauses mid-file is not done: only its close, or the long timeout, counts.
    tracker = ReadinessTracker(0.5, open_writer_timeout=60.0)
    tracker.observe(F, (10, 1), now=100.0)
    tracker.mark_writing(F)
    assert tracker.due(101.0) == []
    assert tracker.next_deadline(101.0) == pytest.approx(160.0)
    tracker.observe(F, (20, 2), now=102.0)  # more written after the pause
    tracker.mark_closed(F, now=102.5)
    assert tracker.due(102.5) == [F]


def test_a_file_whose_writer_never_closes_is_taken_after_the_open_writer_timeout() -> None:
    tracker = ReadinessTracker(0.5, open_writer_timeout=60.0)
    tracker.observe(F, (10, 1), now=100.0)
    tracker.mark_writing(F)
    assert tracker.due(159.9) == []
    assert tracker.due(160.0) == [F]


def test_the_open_writer_timeout_counts_from_the_last_change() -> None:
    tracker = ReadinessTracker(0.5, open_writer_timeout=10.0)
    tracker.observe(F, (10, 1), now=100.0)
    tracker.mark_writing(F)
    tracker.observe(F, (20, 2), now=108.0)
    assert tracker.due(110.0) == []
    assert tracker.due(118.0) == [F]


def test_the_open_writer_timeout_is_never_shorter_than_the_debounce() -> None:
    assert ReadinessTracker(5.0, open_writer_timeout=1.0).open_writer_timeout == 5.0


def test_a_close_waits_the_settle_time_and_a_write_in_it_starts_over() -> None:
    tracker = ReadinessTracker(0.5, settle=1.0)
    tracker.observe(F, (10, 1), now=100.0)
    tracker.mark_writing(F)
    tracker.mark_closed(F, now=100.2)
    assert tracker.due(100.5) == []
    assert tracker.next_deadline(100.5) == pytest.approx(101.2)
    tracker.mark_writing(F)  # the writer reopened it to append
    tracker.observe(F, (30, 3), now=100.6)
    assert tracker.due(101.2) == []  # neither the old close nor the debounce: it is open
    tracker.mark_closed(F, now=101.5)
    assert tracker.due(102.4) == []
    assert tracker.due(102.5) == [F]


def test_a_rename_in_is_ready_at_once_whatever_the_settle_time() -> None:
    tracker = ReadinessTracker(0.5, settle=5.0)
    tracker.observe(F, (10, 1), now=100.0)
    tracker.mark_finished(F, now=100.0)
    assert tracker.due(100.0) == [F]


def test_a_scanned_file_keeps_the_debounce_rule() -> None:
    # No events showed a writer (a scan, or an observer without close events): stability.
    tracker = ReadinessTracker(0.5, open_writer_timeout=60.0, settle=5.0)
    tracker.observe(F, (10, 1), now=100.0)
    assert tracker.due(100.5) == [F]


def test_a_released_file_waits_a_debounce_even_if_it_had_an_open_writer() -> None:
    tracker = ReadinessTracker(0.5, open_writer_timeout=60.0)
    tracker.observe(F, (10, 1), now=100.0)
    tracker.mark_writing(F)
    assert tracker.due(160.0) == [F]
    tracker.take(F)
    tracker.release(F, now=161.0)
    assert tracker.due(161.5) == [F]


# ---- names --------------------------------------------------------------------------------------


def test_patterns_match_ignoring_case() -> None:
    assert matches("RESULT.JSON", ("*.json",))
    assert matches("a.xml", ("*.json", "*.xml"))
    assert not matches("a.json.part", ("*.json",))
    assert not matches("a.json", ())


def test_temp_files_and_the_marker_are_never_taken(tmp_path: Path) -> None:
    target = _target(tmp_path, file_patterns=("*",))
    assert target.takes_file("a.json")
    assert not target.takes_file(".a.json.1234.tmp")
    assert not target.takes_file("COMPLETE.marker")
    assert not target.takes_file("complete.MARKER")


# ---- scans --------------------------------------------------------------------------------------


def test_a_scan_finds_matching_files_only(tmp_path: Path) -> None:
    target = _target(tmp_path)
    (target.watch / "a.json").write_text("{}")
    (target.watch / "b.txt").write_text("x")
    (target.watch / ".c.json.abc.tmp").write_text("{}")
    (target.watch / "sub").mkdir()
    (target.watch / "sub" / "d.json").write_text("{}")
    found = sorted(f.path.name for f in scan_target(target))
    assert found == ["a.json"]


def test_a_recursive_scan_descends_but_skips_excluded_folders(tmp_path: Path) -> None:
    pending = tmp_path / "watch" / "pending"
    target = _target(tmp_path, recursive=True, pending=pending, excluded=(pending,))
    pending.mkdir()
    (pending / "taken.json").write_text("{}")
    (target.watch / "sub" / "deeper").mkdir(parents=True)
    (target.watch / "sub" / "deeper" / "d.json").write_text("{}")
    found = [f.path for f in scan_target(target)]
    assert found == [target.watch / "sub" / "deeper" / "d.json"]


def test_a_symlink_pointing_outside_is_refused_and_one_inside_skipped(tmp_path: Path) -> None:
    target = _target(tmp_path)
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    (target.watch / "real.json").write_text("{}")
    (target.watch / "out.json").symlink_to(outside)
    (target.watch / "in.json").symlink_to(target.watch / "real.json")
    refused: set[Path] = set()
    found = [f.path.name for f in scan_target(target, refused)]
    assert found == ["real.json"]
    assert refused == {target.watch / "out.json"}


def test_a_folder_kind_scan_yields_sub_folders_with_their_file_count(tmp_path: Path) -> None:
    target = _target(tmp_path, kind="folder", file_patterns=("*.csv",))
    run = target.watch / "run1"
    run.mkdir()
    (run / "a.csv").write_text("1")
    (run / "b.csv").write_text("2")
    (run / "notes.txt").write_text("n")
    (target.watch / "loose.csv").write_text("x")
    found = list(scan_target(target))
    assert [f.path for f in found] == [run]
    assert found[0].size == 2


def test_a_folder_signature_changes_with_content_and_sees_the_marker(tmp_path: Path) -> None:
    target = _target(tmp_path, kind="folder", file_patterns=("*",))
    run = target.watch / "run1"
    run.mkdir()
    (run / "a.csv").write_text("1")
    first, count, marker = folder_signature(run, target)
    assert (count, marker) == (1, False)
    (run / "a.csv").write_text("12")
    second, _, _ = folder_signature(run, target)
    assert second != first
    (run / "COMPLETE.marker").write_text("")
    _, count, marker = folder_signature(run, target)
    assert (count, marker) == (1, True)


# ---- keep mode ------------------------------------------------------------------------------


def test_the_ledger_remembers_across_instances(tmp_path: Path) -> None:
    ledger = KeepLedger(tmp_path / "state" / "kept.jsonl")
    ledger.add("a.json", 10, 111)
    again = KeepLedger(tmp_path / "state" / "kept.jsonl")
    assert again.contains("a.json", 10, 111)
    assert not again.contains("a.json", 11, 222)  # rewritten in place: new content


def test_the_ledger_ignores_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "kept.jsonl"
    ledger = KeepLedger(path)
    ledger.add("a.json", 1, 1)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"path": "b.js')
    again = KeepLedger(path)
    assert len(again) == 1 and again.contains("a.json", 1, 1)


def test_compacting_the_ledger_drops_files_that_are_gone(tmp_path: Path) -> None:
    path = tmp_path / "kept.jsonl"
    ledger = KeepLedger(path)
    ledger.add("a.json", 1, 1)
    ledger.add("b.json", 2, 2)
    assert ledger.compact(["b.json"]) == 1
    again = KeepLedger(path)
    assert not again.contains("a.json", 1, 1) and again.contains("b.json", 2, 2)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_durable_copy_leaves_the_source_and_no_temp_files(tmp_path: Path) -> None:
    src = tmp_path / "a.json"
    src.write_bytes(b"data")
    (tmp_path / "out").mkdir()
    durable_copy(src, tmp_path / "out" / "a.json")
    assert src.read_bytes() == b"data"
    assert os.listdir(tmp_path / "out") == ["a.json"]
    assert (tmp_path / "out" / "a.json").read_bytes() == b"data"


def test_a_durable_copy_of_a_folder_copies_the_tree(tmp_path: Path) -> None:
    src = tmp_path / "run"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "x.csv").write_text("1")
    (tmp_path / "out").mkdir()
    durable_copy(src, tmp_path / "out" / "run")
    assert (tmp_path / "out" / "run" / "sub" / "x.csv").read_text() == "1"
    assert os.listdir(tmp_path / "out") == ["run"]


def test_targets_ask_about_site_converters_only_when_their_patterns_are_needed(
    tmp_path: Path,
) -> None:
    from wats.config.models import ClientConfig
    from wats.workers.watcher import targets_from_config

    asked: list[list[str]] = []

    def describe(specs: list[str]) -> dict[str, Any]:
        asked.append(specs)
        return {"site.py": {"kind": "file", "file_patterns": ["*.dat"]}, "gone.py": "ImportError"}

    def conv(name: str, spec: str, **more: Any) -> dict[str, Any]:
        return {"name": name, "converter": spec, "watch_folder": str(tmp_path / name), **more}

    config = ClientConfig.model_validate(
        {
            "paths": {"data_dir": str(tmp_path / "data")},
            "converters": [
                conv("json", "wsjf"),
                conv("explicit", "pkg.mod:Conv", kind="file", file_patterns=["*.x"]),
                conv("site", "site.py"),
                conv("gone", "gone.py"),
            ],
        }
    )
    problems: dict[str, str] = {}
    targets = targets_from_config(config, describe, problems)
    assert asked == [["gone.py", "site.py"]]  # not the built-in, not the explicit one
    assert {t.converter: t.file_patterns for t in targets} == {
        "json": ("*.json",),
        "explicit": ("*.x",),
        "site": ("*.dat",),
    }
    assert problems == {"gone": "ImportError"}
