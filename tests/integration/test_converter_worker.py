"""The converter worker as a real process on a real bus, converting in the real sandbox.

Files are put straight into each converter's pending folder (the watcher's job is tested on its
own); the worker takes them at start, on ``file.pending`` hints and on ``converter.scan``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.bus_harness import BusHarness, WorkerProcess, make_config, short_tempdir
from tests.support.bus_harness import wait_until as wait_for_condition
from wats.config.folders import converter_folders
from wats.config.models import ClientConfig, ConverterConfig
from wats.converters.identity import content_hash, report_id
from wats.protocol import topics
from wats.queue import ReportQueue

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="sandbox tests need Linux")

ROOT = Path(__file__).resolve().parents[2]
TARGET = "wats.workers.converter:ConverterWorker"
WATCHER = "wats.workers.watcher:WatcherWorker"
BAD = "tests.support.bad_converters"
STATION = {"name_source": "config", "name": "st-1", "location": "lab", "purpose": "test"}
# Small limits so the misbehaving converters fail fast; plenty of sandboxes so every converter
# line runs at once (one stuck converter must not hold the others up).
WORKER_ARGS = {
    "rescan_seconds": 60,
    "wall_seconds": 4,
    "cpu_seconds": 3,
    "address_space_mb": 1024,
    "max_sandboxes": 12,
}


@pytest.fixture
def tmp() -> Iterator[Path]:
    with short_tempdir("wc-") as path:
        yield path


@pytest.fixture
def bus(tmp: Path) -> Iterator[BusHarness]:
    with BusHarness(tmp / "run") as harness:
        yield harness


def configure(bus: BusHarness, tmp: Path, converters: list[dict[str, Any]]) -> ClientConfig:
    """Write a config with these ``[[converters]]`` (watch folders under tmp/watch/NAME)."""
    base = make_config(tmp / "data", tmp / "run", station=STATION)
    entries = [
        ConverterConfig.model_validate(
            {
                "watch_folder": str(tmp / "watch" / c["name"]),
                "create_watch_folder": True,  # the tests drop files into it
                "retry_delay_seconds": 0.2,
                **c,
            }
        )
        for c in converters
    ]
    config = base.model_copy(update={"converters": entries})
    bus.write_config(config)
    return config


def start_worker(bus: BusHarness, **args: Any) -> WorkerProcess:
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    worker = WorkerProcess(bus, "converter", TARGET, args={**WORKER_ARGS, **args}, env=env)
    worker.start()
    worker.wait_ready(timeout=20)
    return worker


def pending(config: ClientConfig, name: str) -> Path:
    folder = converter_folders(config, config.converter(name)).pending
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def folders_of(config: ClientConfig, name: str):
    return converter_folders(config, config.converter(name))


def drop(config: ClientConfig, converter: str, name: str, text: str) -> Path:
    """Put a file into a converter's pending folder, as the watcher would."""
    path = pending(config, converter) / name
    path.write_text(text)
    return path


def announce(bus: BusHarness, converter: str, path: Path) -> None:
    bus.publish(
        topics.FILE_PENDING, {"converter": converter, "path": str(path), "source": str(path)}
    )


def queue_of(config: ClientConfig) -> ReportQueue:
    return ReportQueue.for_config(config)


def failed_event(bus: BusHarness, converter: str, timeout: float = 30.0):
    return bus.wait_for(
        topics.FILE_FAILED, lambda e: e.body["converter"] == converter, timeout=timeout
    )


def converted_event(bus: BusHarness, converter: str, since: int = 0, timeout: float = 30.0):
    return bus.wait_for(
        topics.FILE_CONVERTED,
        lambda e: e.body["converter"] == converter,
        since=since,
        timeout=timeout,
    )


def test_each_misbehaving_converter_fails_only_its_file_with_the_right_reason(
    bus: BusHarness, tmp: Path
):
    # A sandbox that dies on its file (a signal, the timeout) counts towards max_retries and
    # ends as poison; every other failure is the converter's answer and fails at once.
    bad = {
        "raises": ("Raises", "exception"),
        "loops": ("LoopsForever", "poison"),
        "allocates": ("AllocatesTooMuch", "limit"),
        "segfaults": ("Segfaults", "poison"),
        "not-a-report": ("ReturnsNotAReport", "invalid"),
        "spoils": ("SpoilsItsReport", "invalid"),
        "restamps": ("RewritesItsStamp", "invalid"),
        "forges": ("ForgesItsIdentity", "invalid"),
        "rejects": ("LowConfidence", "rejected"),
    }
    retries = {"loops": 1, "segfaults": 2}
    converters = [
        {"name": n, "converter": f"{BAD}:{cls}", "max_retries": retries.get(n, 3)}
        for n, (cls, _) in bad.items()
    ]
    converters += [
        {"name": "good", "converter": f"{BAD}:SimpleText"},
        {"name": "prints", "converter": f"{BAD}:PrintsToStdout"},
        {
            "name": "writes",
            "converter": f"{BAD}:WritesOutsideTempDir",
            "arguments": {"target": str(tmp / "outside.txt")},
        },
        {"name": "alarms", "converter": f"{BAD}:LowConfidence"},
    ]
    config = configure(bus, tmp, converters)
    for name in bad:
        text = "confidence=0.1\nSN-R\n" if name == "rejects" else "SN-X\n"
        drop(config, name, f"{name}.txt", text)
    for i in range(3):
        drop(config, "good", f"good-{i}.txt", f"SN-G{i}\n")
    drop(config, "prints", "p.txt", "SN-P\n")
    drop(config, "writes", "w.txt", "SN-W\n")
    drop(config, "alarms", "a.txt", "confidence=0.3\nSN-A\n")

    worker = start_worker(bus)
    try:
        for name, (_, reason) in bad.items():
            event = failed_event(bus, name)
            assert event.body["reason"] == reason, (name, event.body)
            moved = Path(event.body["path"])
            assert moved.parent == folders_of(config, name).error and moved.exists()
            facts = json.loads(Path(event.body["error_file"]).read_text())
            assert facts["converter"] == name
            assert facts["reason"] == reason
            assert facts["attempts"] == retries.get(name, 1)
            assert facts["message"]
            stamped = datetime.fromisoformat(facts["at_iso"])
            assert abs(stamped.timestamp() - facts["at"]) < 0.002
            assert stamped.utcoffset() == timedelta(0)
            assert not (pending(config, name) / f"{name}.txt").exists()
        raised = json.loads(error_file(config, "raises", "raises.txt").read_text())
        assert raised["exception"] == "ValueError" and "Traceback" in raised["traceback"]
        spoiled = json.loads(error_file(config, "spoils", "spoils.txt").read_text())
        assert "report 0 is not a valid WATS report" in spoiled["message"]
        assert "sn" in spoiled["message"]
        restamped = json.loads(error_file(config, "restamps", "restamps.txt").read_text())
        assert "does not carry the id and station" in restamped["message"]
        crashed = json.loads(error_file(config, "segfaults", "segfaults.txt").read_text())
        assert crashed["signal"] == signal.SIGSEGV and crashed["signal_name"] == "SIGSEGV"
        assert crashed["poison_cause"] == "sandbox"
        assert crashed["detail"]["sandbox_deaths"] == 2
        assert crashed["detail"]["worker_deaths"] == 0
        assert crashed["detail"]["last_failure"] == "crash"
        assert "the sandbox died 2 times" in crashed["message"]
        timed_out = json.loads(error_file(config, "loops", "loops.txt").read_text())
        assert timed_out["detail"]["last_failure"] == "timeout"

        wait_for_condition(
            lambda: len(list(folders_of(config, "good").done.iterdir())) == 3, 30, "good in done"
        )
        # The good files did not wait for the endless converter's timeout.
        good_done = [
            e.ts for e in bus.select(topics.FILE_CONVERTED) if e.body["converter"] == "good"
        ]
        loop_failed = failed_event(bus, "loops").ts
        assert max(good_done) < loop_failed

        converted_event(bus, "prints")
        assert (folders_of(config, "prints").done / "p.txt").exists()
        converted_event(bus, "writes")
        assert (tmp / "outside.txt").exists()  # rlimits do not stop writes (documented)
        alarm = bus.wait_for(topics.FILE_ALARM, lambda e: e.body["converter"] == "alarms")
        assert alarm.body["confidence"] == 0.3 and alarm.body["threshold"] == 0.5
        assert (folders_of(config, "alarms").done / "a.txt").exists()
        assert queue_of(config).counts().pending == 3 + 1 + 1 + 1
    finally:
        worker.terminate()


def error_file(config: ClientConfig, converter: str, name: str) -> Path:
    return folders_of(config, converter).error / f"{name}.error.json"


def test_reports_carry_derived_ids_and_the_station_their_file_records(
    bus: BusHarness, tmp: Path
):
    config = configure(bus, tmp, [{"name": "good", "converter": f"{BAD}:SimpleText"}])
    source = drop(config, "good", "two.txt", "SN-1\nSN-2\n")
    digest = content_hash(source)
    worker = start_worker(bus)
    try:
        event = converted_event(bus, "good")
        expected = [report_id("good", digest, 0), report_id("good", digest, 1)]
        assert event.body["report_ids"] == expected
        queued = {e.body["id"] for e in bus.select(topics.REPORT_QUEUED)}
        assert queued == set(expected)
        for rid in expected:
            item = queue_of(config).get(rid)
            assert item is not None
            report = item.report
            assert report["id"] == rid  # the converter's nil id is not a usable one
            # the file's station wins over the configured "st-1" / "lab"
            assert report["machineName"] == "from-source"
            assert (report["location"], report["purpose"]) == ("nowhere", "test")
            assert item.meta.station == "from-source"
            # the queue points at the source where it now is, not at pending/
            assert item.meta.source_file == event.body["path"]
            assert Path(item.meta.source_file).parent == folders_of(config, "good").done
            assert Path(item.meta.source_file).is_file()
    finally:
        worker.terminate()


def test_an_attempt_record_of_a_file_no_longer_pending_is_removed_at_start(
    bus: BusHarness, tmp: Path
):
    """A kill between a file's move to done and the removal of its record leaves a record no
    file will ever read; the next start removes it (and keeps one whose file still waits)."""
    config = configure(bus, tmp, [{"name": "good", "converter": f"{BAD}:SimpleText"}])
    folders = folders_of(config, "good")
    folders.state.mkdir(parents=True, exist_ok=True)
    gone = folders.state / f"{'a' * 64}.attempts.json"
    gone.write_text('{"file": "delivered.txt", "running": true}')
    old = folders.state / f"{'b' * 64}.attempts.json"
    old.write_text('{"attempts": 1}')  # an earlier version's record names no file
    worker = start_worker(bus)
    try:
        assert not gone.exists()
        assert old.exists()
    finally:
        worker.terminate()


def test_override_file_station_stamps_the_configured_station_over_the_files(
    bus: BusHarness, tmp: Path
):
    config = configure(
        bus,
        tmp,
        [{"name": "fixed", "converter": f"{BAD}:SimpleText", "override_file_station": True}],
    )
    drop(config, "fixed", "one.txt", "SN-9\n")
    worker = start_worker(bus)
    try:
        (rid,) = converted_event(bus, "fixed").body["report_ids"]
        item = queue_of(config).get(rid)
        assert item is not None
        report = item.report
        assert (report["machineName"], report["location"]) == ("st-1", "lab")
    finally:
        worker.terminate()


def test_a_file_whose_name_is_not_utf8_goes_through_at_once_not_at_the_next_scan(
    bus: BusHarness, tmp: Path
):
    """The watcher's ``file.pending`` names the file readably (``\\xe9``) and exactly
    (``path_bytes``), so the converter takes it on the hint; both workers' rescans are a minute
    away, so a scan cannot be what finds it."""
    config = configure(bus, tmp, [{"name": "good", "converter": f"{BAD}:SimpleText"}])
    converter = start_worker(bus, rescan_seconds=600)
    watcher = WorkerProcess(
        bus, "watcher", WATCHER, args={"debounce_ms": 300, "rescan_seconds": 600}
    )
    try:
        watcher.start()
        watcher.wait_ready(timeout=20)
        watch = folders_of(config, "good").watch
        name = b"caf\xe9-latin1.txt"
        with open(os.path.join(os.fsencode(watch), name), "wb") as fh:
            fh.write(b"SN-LATIN1\n")
        announced = bus.wait_for(topics.FILE_PENDING, src="watcher", timeout=10)
        assert announced.body["path"].endswith("caf\\xe9-latin1.txt")  # readable, not exact
        converted = converted_event(bus, "good", timeout=15)
        assert converted.body["report_ids"]
        done = folders_of(config, "good").done
        assert os.listdir(os.fsencode(done)) == [name]
    finally:
        watcher.terminate()
        converter.terminate()


def test_converting_the_same_content_twice_gives_the_same_ids_and_queues_nothing_new(
    bus: BusHarness, tmp: Path
):
    config = configure(bus, tmp, [{"name": "good", "converter": f"{BAD}:SimpleText"}])
    worker = start_worker(bus)
    try:
        first = drop(config, "good", "first.txt", "SN-1\nSN-2\n")
        announce(bus, "good", first)
        one = converted_event(bus, "good")
        mark = bus.mark()
        second = drop(config, "good", "again.txt", "SN-1\nSN-2\n")
        announce(bus, "good", second)
        two = converted_event(bus, "good", since=mark)
        assert one.body["report_ids"] == two.body["report_ids"]
        assert bus.select(topics.REPORT_QUEUED, since=mark) == []  # the queue saw known ids
        assert queue_of(config).counts().pending == 2
        done = folders_of(config, "good").done
        assert sorted(p.name for p in done.iterdir()) == ["again.txt", "first.txt"]
    finally:
        worker.terminate()


def test_a_kill_between_enqueue_and_post_action_duplicates_nothing_after_restart(
    bus: BusHarness, tmp: Path
):
    """The done folder is unusable (a file stands where it should be), so the post action
    fails after the reports were queued; the worker is then SIGKILLed in that state."""
    blocked_done = tmp / "done-blocked"
    blocked_done.write_text("not a folder")
    config = configure(
        bus,
        tmp,
        [{"name": "good", "converter": f"{BAD}:SimpleText", "done_folder": str(blocked_done)}],
    )
    source = drop(config, "good", "r.txt", "SN-1\nSN-2\nSN-3\n")
    ids = {report_id("good", content_hash(source), i) for i in range(3)}
    queue = queue_of(config)
    worker = start_worker(bus)
    try:
        wait_for_condition(lambda: queue.counts().pending == 3, 30, "reports queued")
        assert {item.meta.id for item in queue.list("pending")} == ids
        assert source.exists()  # queued first; the post action has not happened
        worker.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        worker.wait_exit()
    finally:
        worker.kill()
    blocked_done.unlink()
    blocked_done.mkdir()
    mark = bus.mark()
    again = start_worker(bus)
    try:
        event = converted_event(bus, "good", since=mark)
        assert set(event.body["report_ids"]) == ids
        assert (blocked_done / "r.txt").exists() and not source.exists()
        assert queue.counts().pending == 3
        assert bus.select(topics.REPORT_QUEUED, since=mark) == []
    finally:
        again.terminate()


def test_a_file_that_kills_the_worker_repeatedly_is_quarantined_as_poison(
    bus: BusHarness, tmp: Path
):
    config = configure(
        bus,
        tmp,
        [
            {
                "name": "deadly",
                "converter": f"{BAD}:KillsTheWorker",
                "max_retries": 1,  # a worker's death is not a sandbox death: this bound is unused
                "max_worker_deaths": 2,
            }
        ],
    )
    drop(config, "deadly", "deadly.txt", "kill")
    for _ in range(2):
        worker = start_worker(bus)
        try:
            assert worker.wait_exit(timeout=30) == -signal.SIGKILL
        finally:
            worker.kill()
    mark = bus.mark()
    worker = start_worker(bus)
    try:
        event = bus.wait_for(topics.FILE_FAILED, since=mark, timeout=30)
        assert event.body["reason"] == "poison" and event.body["poison"] is True
        facts = json.loads(Path(event.body["error_file"]).read_text())
        assert facts["reason"] == "poison" and facts["attempts"] == 2
        assert facts["poison_cause"] == "worker" and event.body["poison_cause"] == "worker"
        assert (facts["detail"]["worker_deaths"], facts["detail"]["sandbox_deaths"]) == (2, 0)
        assert (folders_of(config, "deadly").error / "deadly.txt").exists()
        assert list(folders_of(config, "deadly").state.iterdir()) == []
        # The worker is fine and keeps converting.
        healthy = drop(config, "deadly", "fine.txt", "SN-OK\n")
        announce(bus, "deadly", healthy)
        converted_event(bus, "deadly", since=mark)
        assert worker.alive()
    finally:
        worker.terminate()


def test_a_worker_sigkilled_while_converting_is_no_evidence_against_the_file(
    bus: BusHarness, tmp: Path
):
    """SIGKILL from outside, twice, while the file is in the sandbox: with ``max_retries = 1``
    and a long retry delay, a kill counted against the file would quarantine it or hold it for
    minutes. It is converted as soon as the worker is back, and its record is gone."""
    config = configure(
        bus,
        tmp,
        [
            {
                "name": "held",
                "converter": f"{BAD}:WaitsForRelease",
                "max_retries": 1,
                "retry_delay_seconds": 300,
            }
        ],
    )
    release = tmp / "release"
    source = drop(config, "held", "held.txt", f"hold={release}\nSN-HELD\n")
    state = folders_of(config, "held").state
    started = Path(f"{release}.started")
    for kill in range(2):
        worker = start_worker(bus)
        try:
            wait_for_condition(started.exists, 30, f"the conversion to start ({kill + 1})")
            (record,) = list(state.glob("*.attempts.json"))
            on_disk = json.loads(record.read_text())
            assert on_disk["running"] is True and on_disk["sandbox_deaths"] == 0
            assert on_disk["worker_deaths"] == kill  # the previous kill, seen at this start
            started.unlink()
            worker.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
            assert worker.wait_exit(timeout=10) == -signal.SIGKILL
        finally:
            worker.kill()
    release.touch()
    mark = bus.mark()
    worker = start_worker(bus)
    try:
        event = converted_event(bus, "held", since=mark, timeout=30)
        assert event.body["path"].endswith("held.txt") and not source.exists()
        assert bus.select(topics.FILE_FAILED, since=mark) == []
        assert list(state.glob("*.attempts.json")) == []
        assert queue_of(config).counts().pending == 1
    finally:
        worker.terminate()


def test_a_file_that_kills_the_sandbox_is_retried_then_quarantined_as_poison(
    bus: BusHarness, tmp: Path
):
    config = configure(
        bus,
        tmp,
        [
            {
                "name": "killer",
                "converter": f"{BAD}:KillsItsSandbox",
                "max_worker_deaths": 3,
                # at once: a fork server's death is no evidence; the generous bound ends it
                "retry_delay_seconds": 300,
            }
        ],
    )
    drop(config, "killer", "k.txt", "kill")
    drop(config, "killer", "ok.txt", "SN-OK\n")
    worker = start_worker(bus)
    try:
        event = failed_event(bus, "killer")
        assert event.body["reason"] == "poison"
        facts = json.loads(Path(event.body["error_file"]).read_text())
        assert facts["attempts"] == 3 and facts["poison_cause"] == "worker"
        converted_event(bus, "killer")
        assert worker.alive()
    finally:
        worker.terminate()


def test_the_worker_keeps_converting_after_its_fork_server_is_sigkilled(bus: BusHarness, tmp: Path):
    config = configure(bus, tmp, [{"name": "good", "converter": f"{BAD}:SimpleText"}])
    drop(config, "good", "one.txt", "SN-1\n")
    worker = start_worker(bus)
    try:
        converted_event(bus, "good")
        pids = bus.request("converter", "converter.status").result["sandbox_pids"]
        assert pids
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        wait_for_condition(
            lambda: all(
                not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE
                for p in pids
            ),
            10,
            "fork servers gone",
        )
        mark = bus.mark()
        second = drop(config, "good", "two.txt", "SN-2\n")
        announce(bus, "good", second)
        event = converted_event(bus, "good", since=mark)
        assert event.body["path"].endswith("two.txt")
        assert worker.alive()

        def replaced() -> bool:
            new_pids = bus.request("converter", "converter.status").result["sandbox_pids"]
            return bool(new_pids) and not set(new_pids) & set(pids)

        wait_for_condition(replaced, 10, "a new fork server serving")
    finally:
        worker.terminate()


def test_files_present_at_start_and_found_by_a_scan_are_converted(bus: BusHarness, tmp: Path):
    config = configure(bus, tmp, [{"name": "good", "converter": f"{BAD}:SimpleText"}])
    drop(config, "good", "early.txt", "SN-1\n")
    worker = start_worker(bus)
    try:
        converted_event(bus, "good")
        mark = bus.mark()
        drop(config, "good", "late.txt", "SN-2\n")  # no event: only a scan finds it
        assert bus.request("converter", "converter.scan").ok
        event = converted_event(bus, "good", since=mark)
        assert event.body["path"].endswith("late.txt")
    finally:
        worker.terminate()


def test_delete_post_action_removes_the_source_after_queueing(bus: BusHarness, tmp: Path):
    config = configure(
        bus, tmp, [{"name": "good", "converter": f"{BAD}:SimpleText", "post_action": "delete"}]
    )
    source = drop(config, "good", "gone.txt", "SN-1\n")
    worker = start_worker(bus)
    try:
        converted_event(bus, "good")
        assert not source.exists()
        assert list(folders_of(config, "good").done.iterdir()) == []
        assert queue_of(config).counts().pending == 1
    finally:
        worker.terminate()
