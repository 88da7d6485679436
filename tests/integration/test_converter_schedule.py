"""Scheduled converters in the real converter worker, on a real bus, in the real sandbox.

The converter is the site example configs/site-converters/repair_export.py (UUR exports
collected from a folder); the schedule is a 1 s interval so runs come quickly.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.bus_harness import BusHarness, WorkerProcess, make_config, short_tempdir
from tests.support.bus_harness import wait_until as wait_for_condition
from wats.config.folders import converter_folders
from wats.config.models import ClientConfig, ConverterConfig
from wats.converters.schedule import STATE_FILE
from wats.protocol import topics
from wats.queue import ReportQueue

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="sandbox tests need Linux")

ROOT = Path(__file__).resolve().parents[2]
SITE_CONVERTERS = ROOT / "configs" / "site-converters"
TARGET = "wats.workers.converter:ConverterWorker"
STATION = {"name_source": "config", "name": "HUB", "location": "lab", "purpose": "test"}
WORKER_ARGS = {"rescan_seconds": 60, "wall_seconds": 10}


@pytest.fixture
def tmp() -> Iterator[Path]:
    with short_tempdir("ws-") as path:
        yield path


@pytest.fixture
def bus(tmp: Path) -> Iterator[BusHarness]:
    with BusHarness(tmp / "run") as harness:
        yield harness


def configure(bus: BusHarness, tmp: Path, **entry: Any) -> ClientConfig:
    """One scheduled ``repair`` converter (every second) watching tmp/exports."""
    base = make_config(
        tmp / "data",
        tmp / "run",
        station=STATION,
        paths={"converters_dir": str(SITE_CONVERTERS)},
    )
    conv = ConverterConfig.model_validate(
        {
            "name": "repair",
            "converter": "repair_export.py",
            "kind": "scheduled",
            "watch_folder": str(tmp / "exports"),
            "schedule_interval_seconds": 1,
            "post_action": "move",
            **entry,
        }
    )
    config = base.model_copy(update={"converters": [conv]})
    bus.write_config(config)
    return config


def start_worker(bus: BusHarness) -> WorkerProcess:
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    worker = WorkerProcess(bus, "converter", TARGET, args=WORKER_ARGS, env=env)
    worker.start()
    worker.wait_ready(timeout=20)
    return worker


def export(folder: Path, name: str, serials: list[str], report_type: str = "R") -> Path:
    """A repair station export file: a JSON list of UUR reports."""
    reports = [
        {
            "type": report_type,
            "id": str(uuid.uuid4()),
            "pn": "PCBA-100",
            "sn": sn,
            "rev": "A",
            "processCode": 500,
            "result": "P",
            "machineName": "REPAIR-01",
            "location": "Repair",
            "purpose": "Repair",
            "start": "2024-05-01T10:00:00+02:00",
            "uur": {"user": "tech", "processCode": 90, "comment": "replaced U1"},
        }
        for sn in serials
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(reports))
    return path


def converted(bus: BusHarness, since: int = 0, timeout: float = 30.0, with_reports: bool = False):
    return bus.wait_for(
        topics.FILE_CONVERTED,
        lambda e: e.body["converter"] == "repair" and (e.body["report_ids"] or not with_reports),
        since=since,
        timeout=timeout,
    )


def test_a_scheduled_converter_queues_its_reports_and_a_restart_queues_nothing_again(
    bus: BusHarness, tmp: Path
):
    config = configure(bus, tmp)
    folders = converter_folders(config, config.converter("repair"))
    export(folders.watch, "a.json", ["SN-1", "SN-2"])
    export(folders.watch, "b.json", ["SN-3"])
    queue = ReportQueue.for_config(config)
    worker = start_worker(bus)
    try:
        event = converted(bus, with_reports=True)
        assert event.body["path"] == str(folders.watch)
        assert len(event.body["report_ids"]) == 3
        assert queue.counts().pending == 3
        queued = [e.body for e in bus.select(topics.REPORT_QUEUED)]
        assert sorted(q["id"] for q in queued) == sorted(event.body["report_ids"])
        # the station each export records wins over the configured "HUB"
        assert {q["station"] for q in queued} == {"REPAIR-01"}
        item = queue.get(event.body["report_ids"][0])
        assert item is not None and item.report["type"] == "R"
        assert item.report["machineName"] == "REPAIR-01"
        # The post action moved the collected exports into done/<name>-<slot>/.
        [run_folder] = list(folders.done.iterdir())
        assert run_folder.name.startswith("repair-")
        assert sorted(p.name for p in run_folder.iterdir()) == ["a.json", "b.json"]
        assert list(folders.watch.iterdir()) == []
        # It keeps running on its schedule (nothing left to collect).
        mark = bus.mark()
        assert converted(bus, since=mark).body["report_ids"] == []
    finally:
        worker.terminate()
    state = json.loads((folders.state / STATE_FILE).read_text())
    assert state["completed"] and state["started"] is None

    mark = bus.mark()
    again = start_worker(bus)
    try:
        converted(bus, since=mark)  # the slot missed while it was down runs (once)
        assert bus.select(topics.REPORT_QUEUED, since=mark) == []
        assert queue.counts().pending == 3
    finally:
        again.terminate()


def test_a_run_killed_after_queueing_is_rerun_with_the_same_ids(bus: BusHarness, tmp: Path):
    """The done folder is unusable (a file stands where it should be), so the post action
    fails after the reports were queued; the worker is then SIGKILLed in that state."""
    blocked_done = tmp / "done-blocked"
    blocked_done.write_text("not a folder")
    config = configure(bus, tmp, done_folder=str(blocked_done), retry_delay_seconds=600)
    folders = converter_folders(config, config.converter("repair"))
    source = export(folders.watch, "a.json", ["SN-1", "SN-2"])
    queue = ReportQueue.for_config(config)
    worker = start_worker(bus)
    try:
        wait_for_condition(lambda: queue.counts().pending == 2, 30, "reports queued")
        ids = {item.meta.id for item in queue.list("pending")}
        assert source.exists()  # queued first; the post action has not happened
        worker.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        worker.wait_exit()
    finally:
        worker.kill()
    blocked_done.unlink()
    mark = bus.mark()
    again = start_worker(bus)
    try:
        event = converted(bus, since=mark, with_reports=True)
        assert set(event.body["report_ids"]) == ids
        assert bus.select(topics.REPORT_QUEUED, since=mark) == []
        assert queue.counts().pending == 2
        assert not source.exists()
        assert [p.name for p in blocked_done.rglob("*.json")] == ["a.json"]
    finally:
        again.terminate()


def test_a_failed_run_writes_an_error_file_and_leaves_the_exports(bus: BusHarness, tmp: Path):
    config = configure(bus, tmp, schedule_interval_seconds=3600, run_on_startup=True)
    folders = converter_folders(config, config.converter("repair"))
    source = export(folders.watch, "test-report.json", ["SN-1"], report_type="T")
    worker = start_worker(bus)
    try:
        event = bus.wait_for(
            topics.FILE_FAILED, lambda e: e.body["converter"] == "repair", timeout=30
        )
        assert event.body["path"] == str(folders.watch)
        assert event.body["reason"] == "rejected"
        error_file = Path(event.body["error_file"])
        assert error_file.parent == folders.error
        assert error_file.name.startswith("repair-") and error_file.name.endswith(".error.json")
        facts = json.loads(error_file.read_text())
        assert facts["reason"] == "rejected" and "not a repair report" in facts["message"]
        assert facts["slot"] and facts["file"] == str(folders.watch)
        assert source.exists()
        assert ReportQueue.for_config(config).counts().pending == 0
    finally:
        worker.terminate()
