"""The uploader as a real process on a real bus, uploading a real queue folder to the real
embedded WATS server over real sockets — with the server misbehaving on purpose."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
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
from wats.api import dump_report, parse_report
from wats.config.models import ClientConfig
from wats.protocol import topics
from wats.protocol.envelope import Envelope
from wats.queue import ReportQueue
from wats.server.testing import EmbeddedServer

UPLOADER = "wats.workers.uploader:UploaderWorker"
NAME = "uploader"

# Fast retries and probes, but a rescan far longer than any test: what happens early is the
# uploader reacting to events, not stumbling on work by a periodic scan.
QUEUE_SETTINGS: dict[str, Any] = {
    "retry_base_seconds": 0.2,
    "retry_max_seconds": 1.0,
    "rescan_seconds": 60.0,
    "max_in_flight": 4,
}
ARGS: dict[str, Any] = {"probe_first_seconds": 0.2, "probe_max_seconds": 0.5}


@dataclass
class Rig:
    """A bus, a server, a queue folder and (once started) the uploader, for one test."""

    tmp: Path
    bus: BusHarness
    server: EmbeddedServer
    queue: ReportQueue
    samples: list[dict[str, Any]]
    worker: WorkerProcess | None = None
    _fresh: Iterator[dict[str, Any]] | None = None

    def configure(self, **queue: Any) -> None:
        config = _config(self.tmp, self.server, **queue)
        self.bus.write_config(config)
        self.queue = ReportQueue.for_config(config)

    def start(self, **args: Any) -> WorkerProcess:
        self.worker = WorkerProcess(
            self.bus, NAME, UPLOADER, args={**ARGS, **args}, env={"WATS_TOKEN": self.server.token}
        ).start()
        self.worker.wait_ready()
        return self.worker

    def fresh_report(self) -> dict[str, Any]:
        """The next sample (cycling through every WSJF sample) under a new id."""
        if self._fresh is None:
            self._fresh = itertools.cycle(self.samples)
        report = dict(next(self._fresh))
        report["id"] = str(uuid.uuid4())
        return report

    def enqueue(self, count: int, *, announce: bool = True) -> list[str]:
        """Queue ``count`` fresh reports durably; publish ``report.queued`` for each."""
        ids = []
        for _ in range(count):
            report = self.fresh_report()
            assert self.queue.enqueue(
                report, converter="wsjf", source_file="sample.json", station="test"
            )
            ids.append(report["id"])
            if announce:
                self.bus.publish(topics.REPORT_QUEUED, {"id": report["id"], "converter": "wsjf"})
        return ids

    def on_server(self, ids: list[str]) -> bool:
        store = self.server.context.store
        return all(store.get(i) is not None for i in ids)

    def events(self, type_: str, since: int = 0) -> list[Envelope]:
        return self.bus.select(type_, src=NAME, since=since)

    def uploaded_ids(self, since: int = 0) -> list[str]:
        return [e.body["id"] for e in self.events(topics.REPORT_UPLOADED, since)]

    def wait_uploaded(self, ids: list[str], timeout: float = 15.0) -> None:
        wanted = set(ids)
        wait_until(
            lambda: wanted <= set(self.uploaded_ids()) and self.on_server(ids),
            timeout,
            f"{len(ids)} reports uploaded",
        )

    def status(self) -> dict[str, Any]:
        answer = self.bus.request(NAME, "uploader.status")
        assert answer.ok, answer.error
        return answer.result


def _config(tmp: Path, server: EmbeddedServer, **queue: Any) -> ClientConfig:
    return make_config(
        tmp / "data",
        tmp / "run",
        server={"url": server.url},
        queue={**QUEUE_SETTINGS, **queue},
    )


@pytest.fixture
def rig(samples_dir: Path) -> Iterator[Rig]:
    samples = [
        dump_report(parse_report(path.read_text("utf-8")))
        for path in sorted((samples_dir / "wsjf").glob("*.json"))
    ]
    assert samples, "no WSJF samples"
    with (
        short_tempdir() as tmp,
        EmbeddedServer(tmp / "server") as server,
        BusHarness(tmp / "run") as bus,
    ):
        config = _config(tmp, server)
        bus.write_config(config)
        rig = Rig(tmp, bus, server, ReportQueue.for_config(config), samples)
        try:
            yield rig
        finally:
            if rig.worker is not None:
                rig.worker.kill()


def _failed_for(rig: Rig, report_id: str, *, permanent: bool, since: int = 0) -> Envelope:
    return rig.bus.wait_for(
        topics.REPORT_FAILED,
        lambda e: e.body["id"] == report_id and e.body["permanent"] is permanent,
        src=NAME,
        since=since,
        timeout=15.0,
    )


# ---- the happy path -------------------------------------------------------------------------


def test_every_pending_report_is_uploaded_exactly_once_and_moved_to_completed(rig: Rig) -> None:
    waiting = rig.enqueue(9, announce=False)  # queued while the uploader was not running
    rig.start()
    rig.wait_uploaded(waiting)
    later = rig.enqueue(3)
    rig.wait_uploaded(later)

    everything = waiting + later
    assert rig.server.report_count() == len(everything)
    assert sorted(rig.uploaded_ids()) == sorted(everything)  # one report.uploaded per report
    counts = rig.queue.counts()
    assert (counts.pending, counts.failed, counts.completed) == (0, 0, len(everything))
    for report_id in everything:
        item = rig.queue.get(report_id)
        assert item is not None and item.state == "completed" and item.meta.uploaded_at
    uploaded = rig.events(topics.REPORT_UPLOADED)
    assert all(e.body["attempts"] == 1 and e.body["latency_ms"] > 0 for e in uploaded)


def test_reports_uploaded_with_keep_completed_false_are_deleted(rig: Rig) -> None:
    rig.configure(keep_completed=False)
    ids = rig.enqueue(3, announce=False)
    rig.start()
    rig.wait_uploaded(ids)
    wait_until(lambda: rig.queue.counts().pending == 0, 5, "pending folder empty")
    assert rig.queue.counts().completed == 0
    assert all(rig.queue.get(i) is None for i in ids)


def test_report_queued_wakes_the_uploader_at_once(rig: Rig) -> None:
    rig.start()
    rig.bus.wait_for(topics.QUEUE_STATS, src=NAME)  # the start-up scan is behind us
    report = rig.fresh_report()
    assert rig.queue.enqueue(report, converter="wsjf", source_file=None, station=None)
    mark = rig.bus.mark()
    published = time.monotonic()
    rig.bus.publish(topics.REPORT_QUEUED, {"id": report["id"]})
    rig.bus.wait_for(
        topics.REPORT_UPLOADED, lambda e: e.body["id"] == report["id"], since=mark, timeout=10
    )
    took = time.monotonic() - published
    assert took < 2.0, f"{took:.2f}s from report.queued to uploaded (rescan is 60 s)"


def test_uploader_wake_request_picks_up_reports_nobody_announced(rig: Rig) -> None:
    rig.start()
    ids = rig.enqueue(2, announce=False)
    answer = rig.bus.request(NAME, "uploader.wake")
    assert answer.ok and answer.result["in_flight"] + answer.result["backlog"] >= 1
    rig.wait_uploaded(ids, timeout=5)


def test_several_uploads_run_concurrently(rig: Rig) -> None:
    rig.server.set_faults(latency_ms=600)
    ids = rig.enqueue(8, announce=False)
    started = time.monotonic()
    rig.start()
    rig.wait_uploaded(ids, timeout=20)
    took = time.monotonic() - started
    # One at a time would be 8 x 0.6 s = 4.8 s of server latency alone; 4 in flight, ~1.2 s.
    assert took < 4.0, f"8 uploads with 600 ms latency took {took:.2f}s: no overlap"
    peak = max(e.body["in_flight"] for e in rig.events(topics.QUEUE_STATS))
    assert peak <= 4


def test_queue_stats_are_published_on_change_at_most_once_a_second(rig: Rig) -> None:
    rig.start()
    ids = rig.enqueue(6)
    rig.wait_uploaded(ids)
    final = rig.bus.wait_for(
        topics.QUEUE_STATS,
        # Counts come from the folders, uploaded_total from the loop: a stats event may see the
        # last file moved before the loop has heard that upload's result. Wait for both.
        lambda e: (
            e.body["pending"] == 0 and e.body["completed"] == 6 and e.body["uploaded_total"] == 6
        ),
        src=NAME,
        timeout=10,
    )
    assert final.body["in_flight"] == 0 and final.body["paused"] is False
    stamps = [e.ts for e in rig.events(topics.QUEUE_STATS)]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap >= 0.9 for gap in gaps), gaps
    bodies = [e.body for e in rig.events(topics.QUEUE_STATS)]
    assert all(a != b for a, b in itertools.pairwise(bodies)), "unchanged stats republished"


def test_status_and_heartbeat_tell_counts_in_flight_and_pause(rig: Rig) -> None:
    rig.start()
    ids = rig.enqueue(2)
    rig.wait_uploaded(ids)
    status = rig.status()
    assert status["completed"] == 2 and status["pending"] == 0
    assert status["paused"] is False and status["pause_reason"] is None
    assert status["uploaded_total"] == 2 and status["server"] == rig.server.url
    assert rig.server.token not in repr(status)
    assert rig.worker is not None
    beat = rig.worker.wait_heartbeat(lambda e: e.body["detail"].get("completed") == 2)
    assert {"pending", "failed", "completed", "in_flight", "paused"} <= set(beat.body["detail"])


# ---- the server says no ---------------------------------------------------------------------


def test_a_rejected_report_goes_to_failed_with_the_servers_message(rig: Rig) -> None:
    rig.server.set_faults(reject_next_reports=1)
    rig.start()
    [bad] = rig.enqueue(1)
    event = _failed_for(rig, bad, permanent=True)
    assert "report rejected (fault injection)" in event.body["error"]
    assert event.body["next_attempt"] is None and event.body["attempts"] == 1
    item = rig.queue.get(bad)
    assert item is not None and item.state == "failed"
    assert "report rejected (fault injection)" in (item.last_error or "")
    assert rig.server.context.store.get(bad) is None
    [good] = rig.enqueue(1)  # the next report is not held up by the failed one
    rig.wait_uploaded([good])


def test_a_really_invalid_report_fails_with_the_servers_validation_message(rig: Rig) -> None:
    rig.start()
    report = rig.fresh_report()
    report["result"] = "NotAResult"  # the server validates as WATS does
    assert rig.queue.enqueue(report, converter="wsjf", source_file=None, station=None)
    rig.bus.publish(topics.REPORT_QUEUED, {"id": report["id"]})
    event = _failed_for(rig, report["id"], permanent=True)
    assert "HTTP 400" in event.body["error"] and "result" in event.body["error"]


@pytest.mark.parametrize("fault", ["error_503_probability", "error_500_probability"])
def test_server_errors_keep_the_report_pending_until_it_lands_once(rig: Rig, fault: str) -> None:
    rig.server.set_faults(**{fault: 1.0}, retry_after_seconds=0)
    rig.start()
    [report_id] = rig.enqueue(1)
    event = _failed_for(rig, report_id, permanent=False)
    assert event.body["next_attempt"] is not None
    wait_until(
        lambda: (item := rig.queue.get(report_id)) is not None and item.attempts >= 2,
        10,
        "a second failed attempt recorded in the queue file",
    )
    item = rig.queue.get(report_id)
    assert item is not None and item.state == "pending" and "HTTP 50" in (item.last_error or "")
    rig.server.clear_faults()
    rig.wait_uploaded([report_id])
    assert rig.server.report_count() == 1
    assert rig.uploaded_ids() == [report_id]


def test_a_429_retry_after_is_honoured(rig: Rig) -> None:
    rig.server.set_faults(throttle_next=1, retry_after_seconds=2)
    rig.start()
    [report_id] = rig.enqueue(1)
    failed = _failed_for(rig, report_id, permanent=False)
    assert "429" in failed.body["error"]
    assert failed.body["next_attempt"] >= failed.ts + 1.9
    uploaded = rig.bus.wait_for(
        topics.REPORT_UPLOADED, lambda e: e.body["id"] == report_id, src=NAME, timeout=10
    )
    assert uploaded.ts - failed.ts >= 2.0
    assert uploaded.body["attempts"] == 2


def test_too_many_transient_failures_send_the_report_to_failed(rig: Rig) -> None:
    rig.configure(max_attempts=3)
    rig.server.set_faults(error_500_probability=1.0)
    rig.start()
    [report_id] = rig.enqueue(1)
    event = _failed_for(rig, report_id, permanent=True)
    assert event.body["attempts"] == 3
    assert "gave up after 3 transient failures" in event.body["error"]
    transient = [e for e in rig.events(topics.REPORT_FAILED) if not e.body["permanent"]]
    assert [e.body["attempts"] for e in transient] == [1, 2]
    item = rig.queue.get(report_id)
    assert item is not None and item.state == "failed" and item.attempts == 3


# ---- the server is gone -----------------------------------------------------------------------


def test_unreachable_server_pauses_uploads_loses_nothing_and_drains_when_back(rig: Rig) -> None:
    rig.start()
    rig.server.refuse_connections()
    ids = rig.enqueue(10)
    rig.bus.wait_for(
        topics.QUEUE_STATS,
        lambda e: e.body["paused"] is True and e.body["pending"] == 10,
        src=NAME,
        timeout=10,
    )
    status = rig.status()
    assert status["paused"] and "connection error" in status["pause_reason"]
    # Paused means paused: only the uploads already under way when the server vanished failed.
    failed_ids = {e.body["id"] for e in rig.events(topics.REPORT_FAILED)}
    assert len(failed_ids) <= 4
    assert all(not e.body["permanent"] for e in rig.events(topics.REPORT_FAILED))
    assert rig.queue.counts().pending == 10

    rig.server.accept_connections()  # no health worker here: the uploader's own probe sees it
    rig.wait_uploaded(ids, timeout=20)
    assert rig.server.report_count() == 10
    assert sorted(rig.uploaded_ids()) == sorted(ids)
    rig.bus.wait_for(
        topics.QUEUE_STATS,
        lambda e: e.body["paused"] is False and e.body["completed"] == 10,
        src=NAME,
        timeout=5,
    )


def test_offline_connection_status_pauses_until_online(rig: Rig) -> None:
    rig.start()
    offline = {"status": "OFFLINE", "url": rig.server.url, "since": time.time(), "error": "x"}
    rig.bus.publish(topics.CONNECTION_STATUS, offline)
    rig.bus.wait_for(topics.QUEUE_STATS, lambda e: e.body["paused"] is True, src=NAME)
    ids = rig.enqueue(3)
    answer = rig.bus.request(NAME, "uploader.wake")  # replies after the scan: nothing started
    assert answer.ok and answer.result["in_flight"] == 0
    assert rig.uploaded_ids() == [] and rig.server.report_count() == 0

    online = {**offline, "status": "ONLINE", "since": time.time(), "error": None}
    rig.bus.publish(topics.CONNECTION_STATUS, online)
    rig.wait_uploaded(ids, timeout=10)
    assert rig.status()["paused"] is False


def test_a_restarted_uploader_sends_what_the_last_one_left(rig: Rig) -> None:
    rig.server.set_faults(latency_ms=300)
    first = rig.start()
    ids = rig.enqueue(12)
    wait_until(lambda: len(rig.uploaded_ids()) >= 2, 15, "some uploads done")
    first.kill()  # SIGKILL, mid-flight
    rig.server.clear_faults()
    rig.worker = None
    rig.start()
    # Judged by the server and the folders: a report whose upload was recorded just before the
    # kill has no report.uploaded event, and must not be sent again to get one.
    wait_until(
        lambda: rig.on_server(ids) and rig.queue.counts().pending == 0, 20, "all 12 delivered"
    )
    assert rig.server.report_count() == 12
    counts = rig.queue.counts()
    assert (counts.pending, counts.failed, counts.completed) == (0, 0, 12)
