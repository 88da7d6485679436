"""Symlinks in watch folders, against the real watcher worker process on a real bus.

The rules (docs/security.md, "Input hardening"): a symlink is never followed. One pointing
outside the watch folder is refused — left in place, logged once, counted; one pointing inside is
skipped (its target is taken under its own name); recursive watches do not descend into
symlinked folders; a folder candidate holding a symlink is refused until it changes.

Absence is proven after a positive sync point: a real file dropped later is handed over, and
rescans are answered, before we look for what must not have moved.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.bus_harness import (
    BusHarness,
    WorkerProcess,
    make_config,
    short_tempdir,
    wait_until,
)
from wats.config.folders import converter_folders
from wats.config.models import ClientConfig, ConverterConfig
from wats.protocol import topics
from wats.queue import ReportQueue

WATCHER = "wats.workers.watcher:WatcherWorker"
CONVERTER = "wats.workers.converter:ConverterWorker"
SIMPLE_TEXT = "tests.support.bad_converters:SimpleText"
STATION = {"name_source": "config", "name": "st-1", "location": "lab", "purpose": "test"}
ROOT = Path(__file__).resolve().parents[2]
OUTSIDE_REFUSED = "symlink pointing outside the watch folder refused"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def tmp() -> Iterator[Path]:
    with short_tempdir("wsl-") as path:
        yield path


@pytest.fixture
def bus(tmp: Path) -> Iterator[BusHarness]:
    with BusHarness(tmp / "run") as harness:
        yield harness


def _configure(bus: BusHarness, tmp: Path, **converter: Any) -> tuple[Path, Path]:
    watch, pending = tmp / "watch", tmp / "pending"
    config = ClientConfig.model_validate(
        {
            "paths": {"data_dir": str(tmp / "data"), "runtime_dir": str(tmp / "run")},
            "supervisor": {
                "heartbeat_interval_seconds": 0.2,
                "orphan_timeout_seconds": 1.0,
                "stop_grace_seconds": 3.0,
            },
            "converters": [
                {
                    "name": "json",
                    "converter": "wsjf",
                    "watch_folder": str(watch),
                    "pending_folder": str(pending),
                    **converter,
                }
            ],
        }
    )
    bus.write_config(config)
    watch.mkdir(parents=True, exist_ok=True)
    return watch, pending


def _watcher(bus: BusHarness, **args: Any) -> WorkerProcess:
    return WorkerProcess(
        bus, "watcher", WATCHER, args={"debounce_ms": 200, "rescan_seconds": 30, **args}
    )


def _handed_over(bus: BusHarness, source: Path, timeout: float = 10.0) -> Any:
    return bus.wait_for(
        topics.FILE_PENDING,
        lambda e: e.body["source"] == str(source),
        src="watcher",
        timeout=timeout,
    )


def _rescan(bus: BusHarness, times: int = 2) -> None:
    for _ in range(times):
        assert bus.request("watcher", "watcher.rescan").ok


def _tree(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    found = []
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            found.append(os.path.relpath(os.path.join(root, name), folder))
    return sorted(found)


def _refused(bus: BusHarness) -> int:
    return int(bus.request("watcher", "watcher.status").result["refused"])


@pytest.mark.parametrize("observer", ["auto", "polling"])
def test_a_recursive_watch_never_follows_a_symlinked_folder_outside(
    bus: BusHarness, tmp: Path, observer: str
) -> None:
    watch, pending = _configure(bus, tmp, recursive=True, file_patterns=["*.json"])
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "before.json").write_text('{"secret": 1}')
    (watch / "ext").symlink_to(outside, target_is_directory=True)
    with _watcher(bus, observer=observer) as worker:
        worker.wait_ready()
        # Written after the start, so an observer that follows the link sees it as an event.
        (outside / "after.json").write_text('{"secret": 2}')
        (watch / "sub").mkdir()
        (watch / "sub" / "real.json").write_text("{}")
        _handed_over(bus, watch / "sub" / "real.json")
        _rescan(bus)
        assert sorted(os.listdir(outside)) == ["after.json", "before.json"]
        assert _tree(pending) == ["real.json"]
        assert (watch / "ext").is_symlink()
        assert _refused(bus) == 1
        worker.terminate()
        assert worker.output().count(OUTSIDE_REFUSED) == 1


def test_a_symlinked_folder_pointing_inside_is_not_entered_twice(
    bus: BusHarness, tmp: Path
) -> None:
    watch, pending = _configure(bus, tmp, recursive=True, file_patterns=["*.json"])
    (watch / "real").mkdir()
    (watch / "alias").symlink_to(watch / "real", target_is_directory=True)
    with _watcher(bus) as worker:
        worker.wait_ready()
        (watch / "real" / "r.json").write_text("{}")
        event = _handed_over(bus, watch / "real" / "r.json")
        _rescan(bus)
        assert event.body["path"] == str(pending / "r.json")
        assert _tree(pending) == ["r.json"]
        assert (watch / "alias").is_symlink()
        assert _refused(bus) == 0
        sources = [e.body["source"] for e in bus.select(topics.FILE_PENDING, src="watcher")]
        assert sources == [str(watch / "real" / "r.json")]


def test_a_file_symlink_pointing_inside_is_left_and_its_target_taken_once(
    bus: BusHarness, tmp: Path
) -> None:
    watch, pending = _configure(bus, tmp, file_patterns=["*.json"])
    (watch / "target.json").write_text('{"t": 1}')
    (watch / "alias.json").symlink_to(watch / "target.json")
    with _watcher(bus) as worker:
        worker.wait_ready()
        _handed_over(bus, watch / "target.json")
        (watch / "sync.json").write_text("{}")
        _handed_over(bus, watch / "sync.json")
        _rescan(bus)
        assert _tree(pending) == ["sync.json", "target.json"]
        assert (watch / "alias.json").is_symlink()  # dangling now, still never followed
        assert _refused(bus) == 0


def test_dangling_and_looping_symlinks_do_not_disturb_the_watcher(
    bus: BusHarness, tmp: Path
) -> None:
    watch, pending = _configure(bus, tmp, recursive=True, file_patterns=["*.json"])
    (watch / "dangling.json").symlink_to(tmp / "nowhere.json")
    (watch / "loop-a.json").symlink_to(watch / "loop-b.json")
    (watch / "loop-b.json").symlink_to(watch / "loop-a.json")
    with _watcher(bus) as worker:
        worker.wait_ready()
        (watch / "ok.json").write_text("{}")
        _handed_over(bus, watch / "ok.json")
        _rescan(bus)
        assert _tree(pending) == ["ok.json"]
        assert sorted(os.listdir(watch)) == ["dangling.json", "loop-a.json", "loop-b.json"]
        assert worker.alive()


def test_a_folder_candidate_holding_a_symlink_is_refused_until_the_link_is_gone(
    bus: BusHarness, tmp: Path
) -> None:
    watch, pending = _configure(bus, tmp, kind="folder", file_patterns=["*.json"])
    secret = tmp / "secret.json"
    secret.write_text('{"secret": true}')
    run = watch / "run-1"
    run.mkdir()
    (run / "data.json").write_text("{}")
    (run / "stolen.json").symlink_to(secret)
    (run / "COMPLETE.marker").write_text("")
    with _watcher(bus) as worker:
        worker.wait_ready()
        wait_until(lambda: _refused(bus) == 1, 10.0, "the folder refused")
        _rescan(bus, 3)
        assert _tree(pending) == []
        assert (run / "stolen.json").is_symlink()
        assert secret.read_text() == '{"secret": true}'
        # The station (or an operator) removes the link: the folder is taken as it now is.
        (run / "stolen.json").unlink()
        _rescan(bus)
        _handed_over(bus, run)
        assert _tree(pending) == ["run-1", "run-1/COMPLETE.marker", "run-1/data.json"]
        worker.terminate()
        assert worker.output().count("folder holding a symlink refused (stolen.json)") == 1


def test_a_folder_candidate_with_a_symlinked_subfolder_is_refused(
    bus: BusHarness, tmp: Path
) -> None:
    watch, pending = _configure(bus, tmp, kind="folder", file_patterns=["*.json"])
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "x.json").write_text("{}")
    run = watch / "run-2"
    run.mkdir()
    (run / "data.json").write_text("{}")
    (run / "more").symlink_to(outside, target_is_directory=True)
    (run / "COMPLETE.marker").write_text("")
    with _watcher(bus) as worker:
        worker.wait_ready()
        wait_until(lambda: _refused(bus) == 1, 10.0, "the folder refused")
        _rescan(bus)
        assert _tree(pending) == []
        assert sorted(os.listdir(outside)) == ["x.json"]


# ---- the converter worker's backstop ----------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="the converter sandbox needs Linux")
def test_a_symlink_that_reaches_a_pending_folder_goes_to_error_unread(
    bus: BusHarness, tmp: Path
) -> None:
    base = make_config(tmp / "data", tmp / "run", station=STATION)
    entry = ConverterConfig.model_validate(
        {"name": "text", "converter": SIMPLE_TEXT, "watch_folder": str(tmp / "watch")}
    )
    config = base.model_copy(update={"converters": [entry]})
    bus.write_config(config)
    folders = converter_folders(config, entry)
    folders.pending.mkdir(parents=True, exist_ok=True)
    secret = tmp / "secret.txt"
    secret.write_text("SN-SECRET\n")
    (folders.pending / "swapped.txt").symlink_to(secret)
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    worker = WorkerProcess(bus, "converter", CONVERTER, args={"rescan_seconds": 60}, env=env)
    worker.start()
    try:
        worker.wait_ready(timeout=20)
        failed = bus.wait_for(topics.FILE_FAILED, timeout=30.0)
        assert failed.body["reason"] == "refused"
        moved = folders.error / "swapped.txt"
        assert moved.is_symlink()  # the link itself, never its target
        assert secret.read_text() == "SN-SECRET\n"
        facts = json.loads((folders.error / "swapped.txt.error.json").read_text())
        assert facts["reason"] == "refused"
        assert "symlink refused" in facts["message"]
        assert ReportQueue.for_config(config).counts().pending == 0
    finally:
        worker.terminate()
