"""The watcher worker as a real process on a real bus, against real folders."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.bus_harness import BusHarness, WorkerProcess, short_tempdir, wait_until
from wats.config.models import ClientConfig
from wats.protocol import topics

WATCHER = "wats.workers.watcher:WatcherWorker"
DEBOUNCE_MS = 300

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def tmp() -> Iterator[Path]:
    with short_tempdir("ww-") as path:
        yield path


@pytest.fixture
def bus(tmp: Path) -> Iterator[BusHarness]:
    with BusHarness(tmp / "run") as harness:
        yield harness


def _configure(bus: BusHarness, tmp: Path, *converters: dict[str, Any]) -> ClientConfig:
    config = ClientConfig.model_validate(
        {
            "paths": {"data_dir": str(tmp / "data"), "runtime_dir": str(tmp / "run")},
            "supervisor": {
                "heartbeat_interval_seconds": 0.2,
                "orphan_timeout_seconds": 1.0,
                "stop_grace_seconds": 3.0,
            },
            # These tests drop files into folders the watcher is asked to create.
            "converters": [{"create_watch_folder": True, **c} for c in converters],
        }
    )
    bus.write_config(config)
    return config


def _json_converter(tmp: Path, name: str = "json", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "converter": "wsjf",
        "watch_folder": str(tmp / "watch" / name),
        "pending_folder": str(tmp / "pending" / name),
        **extra,
    }


def _watcher(bus: BusHarness, **args: Any) -> WorkerProcess:
    return WorkerProcess(
        bus, "watcher", WATCHER, args={"debounce_ms": DEBOUNCE_MS, "rescan_seconds": 30, **args}
    )


def _names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def _pending_for(bus: BusHarness, source: Path, since: int = 0, timeout: float = 10.0) -> Any:
    return bus.wait_for(
        topics.FILE_PENDING,
        lambda e: e.body["source"] == str(source),
        src="watcher",
        since=since,
        timeout=timeout,
    )


def _wait_pending_events(bus: BusHarness, count: int, timeout: float = 15.0) -> list[Any]:
    def enough() -> list[Any]:
        events = bus.select(topics.FILE_PENDING, src="watcher")
        return events if len(events) >= count else []

    return wait_until(enough, timeout, f"{count} file.pending events")


def _pace(seconds: float) -> None:
    """The writer's own pace (a slow station), not synchronisation with the worker."""
    threading.Event().wait(seconds)


# ---- files ----------------------------------------------------------------------------------


def test_a_dropped_file_moves_to_pending_and_is_announced(bus: BusHarness, tmp: Path) -> None:
    _configure(bus, tmp, _json_converter(tmp))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    with _watcher(bus) as worker:
        worker.wait_ready()
        (watch / "r1.json").write_text('{"id": 1}')
        event = _pending_for(bus, watch / "r1.json")
        assert event.body["converter"] == "json"
        assert event.body["path"] == str(pending / "r1.json")
        assert (pending / "r1.json").read_text() == '{"id": 1}'
        assert _names(watch) == []
        detected = bus.wait_for(topics.FILE_DETECTED, src="watcher")
        assert detected.body["path"] == str(watch / "r1.json")
        worker.wait_heartbeat(lambda e: e.body["detail"].get("moved") == 1)
        assert worker.terminate() == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify close-write events")
def test_a_closed_file_moves_without_waiting_for_the_debounce(bus: BusHarness, tmp: Path) -> None:
    _configure(bus, tmp, _json_converter(tmp))
    watch = tmp / "watch" / "json"
    with _watcher(bus, debounce_ms=60_000) as worker:  # stability alone would take a minute
        worker.wait_ready()
        (watch / "closed.json").write_text("{}")
        _pending_for(bus, watch / "closed.json", timeout=5)


def test_a_name_clash_in_pending_keeps_both_files(bus: BusHarness, tmp: Path) -> None:
    _configure(bus, tmp, _json_converter(tmp))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    pending.mkdir(parents=True)
    (pending / "r.json").write_text("first")
    with _watcher(bus) as worker:
        worker.wait_ready()
        (watch / "r.json").write_text("second")
        event = _pending_for(bus, watch / "r.json")
        assert event.body["path"] == str(pending / "r (1).json")
        assert (pending / "r.json").read_text() == "first"
        assert (pending / "r (1).json").read_text() == "second"


def test_a_slow_writer_is_not_moved_until_it_closes_the_file(bus: BusHarness, tmp: Path) -> None:
    _configure(bus, tmp, _json_converter(tmp))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    path = watch / "slow.json"
    with _watcher(bus) as worker:
        worker.wait_ready()
        with open(path, "w", encoding="utf-8") as fh:
            for step in range(12):  # 12 x 0.1 s: four debounce windows, never quiet for one
                fh.write(f"chunk {step}\n")
                fh.flush()
                _pace(0.1)
                assert path.exists(), f"moved while still being written (step {step})"
        _pending_for(bus, path)
        assert (pending / "slow.json").read_text().count("chunk") == 12


def test_a_file_whose_writer_stalls_is_moved_once_stable(bus: BusHarness, tmp: Path) -> None:
    # The fallback where no close event comes (polling observers, network shares): stability.
    _configure(bus, tmp, _json_converter(tmp))
    watch = tmp / "watch" / "json"
    with _watcher(bus, observer="polling") as worker:
        worker.wait_ready()
        with open(watch / "stall.json", "w", encoding="utf-8") as fh:
            fh.write("part 1\n")
            fh.flush()
            _pending_for(bus, watch / "stall.json")  # stable for the debounce while still open


LINUX_ONLY = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="inotify close-write events"
)


def _pending_events_for(bus: BusHarness, source: Path) -> list[Any]:
    return [
        e for e in bus.select(topics.FILE_PENDING, src="watcher") if e.body["source"] == str(source)
    ]


@LINUX_ONLY
def test_a_writer_pausing_longer_than_the_debounce_is_waited_for(
    bus: BusHarness, tmp: Path
) -> None:
    # The new-user case: a station holds its file open and pauses mid-write for longer than
    # the debounce. The file is not finished until its writer closes it.
    _configure(bus, tmp, _json_converter(tmp))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    path = watch / "paused.json"
    with _watcher(bus) as worker:
        worker.wait_ready()
        with open(path, "w", encoding="utf-8") as fh:
            fh.write('{"part": 1,\n')
            fh.flush()
            _pace(DEBOUNCE_MS * 4 / 1000)  # four debounce windows without a write
            assert path.exists(), "taken while its writer still held it open"
            assert _names(pending) == []
            fh.write(' "part2": 2}\n')
        _pending_for(bus, path)
        assert _names(pending) == ["paused.json"]
        assert (pending / "paused.json").read_text() == '{"part": 1,\n "part2": 2}\n'
        assert len(_pending_events_for(bus, path)) == 1


@LINUX_ONLY
def test_a_writer_that_never_closes_is_taken_after_the_open_writer_timeout(
    bus: BusHarness, tmp: Path
) -> None:
    _configure(bus, tmp, _json_converter(tmp))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    path = watch / "hung.json"
    with _watcher(bus, open_writer_timeout_seconds=2) as worker:
        worker.wait_ready()
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("{}")
            fh.flush()
            _pace(1.0)  # past the debounce, short of the timeout
            assert path.exists(), "taken on the debounce while its writer held it open"
            _pending_for(bus, path, timeout=10)  # the safety net: the writer hung
        assert (pending / "hung.json").read_text() == "{}"


@LINUX_ONLY
def test_a_close_and_reopen_within_the_settle_time_makes_one_file(
    bus: BusHarness, tmp: Path
) -> None:
    # A logger that appends in several opens: settle_after_close_ms waits for it to come back.
    _configure(bus, tmp, _json_converter(tmp))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    path = watch / "appended.json"
    with _watcher(bus, settle_after_close_ms=1500) as worker:
        worker.wait_ready()
        path.write_text("header\n")
        _pace(0.2)
        assert path.exists(), "taken at its first close despite the settle time"
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("results\n")
        _pending_for(bus, path)
        assert _names(pending) == ["appended.json"]
        assert (pending / "appended.json").read_text() == "header\nresults\n"
        assert len(_pending_events_for(bus, path)) == 1


@LINUX_ONLY
def test_a_file_renamed_in_from_outside_the_watch_folder_is_taken_at_once(
    bus: BusHarness, tmp: Path
) -> None:
    # The rename is the finish line, also from another folder: neither the debounce nor the
    # open-writer wait applies (watchdog would report it as "created" otherwise).
    _configure(bus, tmp, _json_converter(tmp))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    outside = tmp / "station-temp"
    outside.mkdir()
    (outside / "moved.json").write_text("{}")
    with _watcher(bus, debounce_ms=60_000) as worker:
        worker.wait_ready()
        os.replace(outside / "moved.json", watch / "moved.json")
        _pending_for(bus, watch / "moved.json", timeout=5)
        assert (pending / "moved.json").read_text() == "{}"


@LINUX_ONLY
def test_files_in_a_folder_renamed_in_from_outside_are_taken_at_once(
    bus: BusHarness, tmp: Path
) -> None:
    _configure(bus, tmp, _json_converter(tmp, recursive=True))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    batch = tmp / "station-temp" / "batch"
    (batch / "deeper").mkdir(parents=True)
    (batch / "a.json").write_text("a")
    (batch / "deeper" / "b.json").write_text("b")
    with _watcher(bus, debounce_ms=60_000) as worker:
        worker.wait_ready()
        os.replace(batch, watch / "batch")
        _pending_for(bus, watch / "batch" / "a.json", timeout=5)
        _pending_for(bus, watch / "batch" / "deeper" / "b.json", timeout=5)
        assert _names(pending) == ["a.json", "b.json"]


def test_files_present_before_start_are_taken_by_the_first_scan(bus: BusHarness, tmp: Path) -> None:
    _configure(bus, tmp, _json_converter(tmp))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    watch.mkdir(parents=True)
    for i in range(20):
        (watch / f"old{i}.json").write_text(str(i))
    with _watcher(bus) as worker:
        worker.wait_ready()
        events = _wait_pending_events(bus, 20)
        assert {e.body["source"] for e in events} == {
            str(watch / f"old{i}.json") for i in range(20)
        }
        assert len(_names(pending)) == 20
        assert _names(watch) == []


def test_two_thousand_files_in_one_folder_are_each_moved_exactly_once(
    bus: BusHarness, tmp: Path
) -> None:
    _configure(bus, tmp, _json_converter(tmp))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    watch.mkdir(parents=True)
    for i in range(1000):  # half before start (the scan), half while running (events)
        (watch / f"f{i:04}.json").write_text(str(i))
    with _watcher(bus) as worker:
        worker.wait_ready()
        for i in range(1000, 2000):
            (watch / f"f{i:04}.json").write_text(str(i))
        events = _wait_pending_events(bus, 2000, timeout=60)
        assert len({e.body["source"] for e in events}) == 2000
        answer = bus.request("watcher", "watcher.rescan")  # nothing left to find
        assert answer.ok
        status = bus.request("watcher", "watcher.status").result
        assert status["moved"] == 2000
        assert _names(pending) == [f"f{i:04}.json" for i in range(2000)]
        assert _names(watch) == []
        assert all((pending / f"f{i:04}.json").read_text() == str(i) for i in range(0, 2000, 97))
        assert len(bus.select(topics.FILE_PENDING, src="watcher")) == 2000


def test_files_appearing_during_scans_are_all_moved_once(bus: BusHarness, tmp: Path) -> None:
    _configure(bus, tmp, _json_converter(tmp))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    watch.mkdir(parents=True)
    with _watcher(bus) as worker:
        worker.wait_ready()
        stop = threading.Event()

        def drop() -> None:
            for i in range(600):
                (watch / f"d{i:04}.json").write_text(str(i))
            stop.set()

        writer = threading.Thread(target=drop)
        writer.start()
        scans = 0
        while not stop.is_set() or scans < 3:  # scans race with the writer on purpose
            assert bus.request("watcher", "watcher.rescan").ok
            scans += 1
        writer.join(30)
        _wait_pending_events(bus, 600, timeout=30)
        assert bus.request("watcher", "watcher.rescan").ok
        assert _names(pending) == [f"d{i:04}.json" for i in range(600)]
        assert _names(watch) == []
        assert len(bus.select(topics.FILE_PENDING, src="watcher")) == 600


def test_temp_files_and_other_names_are_left_alone(bus: BusHarness, tmp: Path) -> None:
    _configure(bus, tmp, _json_converter(tmp))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    watch.mkdir(parents=True)
    temp = watch / ".r.json.1a2b.tmp"
    temp.write_text("{")
    (watch / "notes.txt").write_text("not ours")
    with _watcher(bus) as worker:
        worker.wait_ready()
        (watch / "sentinel.json").write_text("{}")
        _pending_for(bus, watch / "sentinel.json")
        assert bus.request("watcher", "watcher.rescan").ok
        assert _names(watch) == [".r.json.1a2b.tmp", "notes.txt"]
        # The atomic-writer pattern: the rename is the finish line.
        os.replace(temp, watch / "r.json")
        _pending_for(bus, watch / "r.json")
        assert _names(pending) == ["r.json", "sentinel.json"]


def test_a_symlink_pointing_outside_the_watch_folder_is_refused(bus: BusHarness, tmp: Path) -> None:
    _configure(bus, tmp, _json_converter(tmp))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    watch.mkdir(parents=True)
    secret = tmp / "secret.json"
    secret.write_text("{}")
    (watch / "link.json").symlink_to(secret)
    with _watcher(bus) as worker:
        worker.wait_ready()
        (watch / "real.json").write_text("{}")
        _pending_for(bus, watch / "real.json")
        for _ in range(3):
            assert bus.request("watcher", "watcher.rescan").ok
        assert (watch / "link.json").is_symlink()
        assert secret.read_text() == "{}"
        assert _names(pending) == ["real.json"]
        assert bus.request("watcher", "watcher.status").result["refused"] == 1
        worker.terminate()
        assert worker.output().count("symlink pointing outside the watch folder refused") == 1


# ---- folders --------------------------------------------------------------------------------


def _folder_converter(tmp: Path, **extra: Any) -> dict[str, Any]:
    return _json_converter(tmp, "runs", kind="folder", file_patterns=["*.json"], **extra)


def test_a_folder_moves_when_its_readiness_marker_appears(bus: BusHarness, tmp: Path) -> None:
    _configure(bus, tmp, _folder_converter(tmp))
    watch, pending = tmp / "watch" / "runs", tmp / "pending" / "runs"
    with _watcher(bus) as worker:
        worker.wait_ready()
        run = watch / "run1"
        run.mkdir()
        for i in range(5):
            (run / f"part{i}.json").write_text(str(i))
        (watch / "run2").mkdir()
        (watch / "run2" / "COMPLETE.marker").write_text("")  # a sentinel: run2 is done
        _pending_for(bus, watch / "run2")
        assert bus.request("watcher", "watcher.rescan").ok
        assert run.is_dir(), "a folder without its marker was taken"
        (run / "COMPLETE.marker").write_text("")
        event = _pending_for(bus, run)
        assert event.body["path"] == str(pending / "run1")
        assert _names(pending / "run1") == ["COMPLETE.marker"] + [f"part{i}.json" for i in range(5)]
        assert _names(watch) == []


@LINUX_ONLY
def test_a_folder_renamed_in_with_its_marker_is_taken_at_once(bus: BusHarness, tmp: Path) -> None:
    _configure(bus, tmp, _folder_converter(tmp))
    watch, pending = tmp / "watch" / "runs", tmp / "pending" / "runs"
    run = tmp / "station-temp" / "run9"
    run.mkdir(parents=True)
    (run / "part.json").write_text("{}")
    (run / "COMPLETE.marker").write_text("")
    with _watcher(bus, debounce_ms=60_000) as worker:
        worker.wait_ready()
        os.replace(run, watch / "run9")
        _pending_for(bus, watch / "run9", timeout=5)
        assert _names(pending / "run9") == ["COMPLETE.marker", "part.json"]


def test_a_folder_moves_once_it_holds_min_file_count_files(bus: BusHarness, tmp: Path) -> None:
    _configure(bus, tmp, _folder_converter(tmp, min_file_count=3))
    watch, pending = tmp / "watch" / "runs", tmp / "pending" / "runs"
    with _watcher(bus) as worker:
        worker.wait_ready()
        run = watch / "run1"
        run.mkdir()
        (run / "a.json").write_text("a")
        (run / "b.json").write_text("b")
        (run / "notes.txt").write_text("does not count")
        (watch / "run0").mkdir()
        for name in ("x.json", "y.json", "z.json"):
            (watch / "run0" / name).write_text(name)
        _pending_for(bus, watch / "run0")  # a full folder went: run1 had as long
        assert bus.request("watcher", "watcher.rescan").ok
        assert run.is_dir(), "a folder with 2 of 3 files was taken"
        (run / "c.json").write_text("c")
        _pending_for(bus, run)
        assert _names(pending / "run1") == ["a.json", "b.json", "c.json", "notes.txt"]


# ---- keep mode ------------------------------------------------------------------------------


def test_keep_mode_copies_and_does_not_take_a_file_twice(bus: BusHarness, tmp: Path) -> None:
    _configure(bus, tmp, _json_converter(tmp, post_action="keep"))
    watch, pending = tmp / "watch" / "json", tmp / "pending" / "json"
    with _watcher(bus) as worker:
        worker.wait_ready()
        (watch / "k.json").write_text("v1")
        _pending_for(bus, watch / "k.json")
        for _ in range(3):
            assert bus.request("watcher", "watcher.rescan").ok
        assert (watch / "k.json").read_text() == "v1"
        assert _names(pending) == ["k.json"]
        assert worker.terminate() == 0

    mark = bus.mark()
    with _watcher(bus) as worker:  # a restart remembers what was copied
        worker.wait_ready()
        (watch / "other.json").write_text("o")
        _pending_for(bus, watch / "other.json", since=mark)
        assert bus.request("watcher", "watcher.rescan").ok
        assert _names(pending) == ["k.json", "other.json"]

        # New content under the same name is a new file.
        (watch / "k.json").write_text("v2 longer")
        _pending_for(bus, watch / "k.json", since=mark)
        assert (pending / "k (1).json").read_text() == "v2 longer"
        assert (watch / "k.json").exists()


# ---- converters that cannot be loaded --------------------------------------------------------


def test_a_site_converter_that_cannot_load_leaves_the_other_folders_watched(
    bus: BusHarness, tmp: Path
) -> None:
    """Its default patterns come from a sandbox (the watcher never imports site code); when it
    cannot be loaded, only its own folder goes unwatched, with the reason in watcher.status."""
    site = tmp / "site"
    site.mkdir()
    (site / "broken.py").write_text("raise RuntimeError('missing licence dongle')\n")
    (site / "good.py").write_text(
        "from wats.converters import ConverterBase, ConverterResult\n"
        "class Good(ConverterBase):\n"
        "    name = 'good'\n"
        "    file_patterns = ('*.good',)\n"
        "    def convert(self, source, context):\n"
        "        return ConverterResult.fail('unused')\n"
    )
    config = _configure(bus, tmp, _json_converter(tmp))
    data = config.model_dump()
    data["paths"]["converters_dir"] = str(site)
    data["converters"] += [
        {"name": "broken", "converter": "broken.py", "watch_folder": str(tmp / "watch" / "b")},
        {"name": "good", "converter": "good.py:Good", "watch_folder": str(tmp / "watch" / "g")},
    ]
    bus.write_config(ClientConfig.model_validate(data))
    with _watcher(bus) as watcher:
        watcher.wait_ready(timeout=30)
        status = bus.request("watcher", "watcher.status").result
        assert "missing licence dongle" in status["not_watched"]["broken"]
        watched = {c["name"]: c["patterns"] for c in status["converters"]}
        assert watched == {"json": ["*.json"], "good": ["*.good"]}
        dropped = tmp / "watch" / "json" / "r.json"
        dropped.write_text("{}")
        _pending_for(bus, dropped)
