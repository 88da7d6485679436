"""The whole pipeline, end to end, as a user runs it: a real supervisor with the watcher, converter
and uploader workers, files dropped into watch folders, the real CLI, and the embedded WATS server
(misbehaving on purpose) receiving the reports over real sockets.

One supervisor serves the whole module (starting one costs seconds); every test uses serial
numbers of its own and asserts on those, so tests do not depend on each other's reports.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.pipeline_harness import (
    Pipeline,
    pipeline,
    small_report,
    wait_for,
    wsjf_copy,
    wsxf_copy,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pipe() -> Iterator[Pipeline]:
    """One running instance (WSJF + WSXF converters) for every test of this module."""
    with pipeline() as running:
        running.wait_workers()
        yield running


@pytest.fixture(autouse=True)
def well_behaved_server(pipe: Pipeline) -> Iterator[None]:
    """Whatever a test does to the server, the next one starts with a well-behaved one."""
    yield
    pipe.server.clear_faults()
    if pipe.server.refusing:
        pipe.server.accept_connections()


def serials_on_server(pipe: Pipeline, prefix: str) -> list[str]:
    """Serial numbers of the server's reports that start with ``prefix`` (one entry per report)."""
    return [h.serial_number for h in pipe.server_headers() if h.serial_number.startswith(prefix)]


def wait_serials(pipe: Pipeline, prefix: str, count: int, timeout: float = 45.0) -> list[str]:
    """Wait until the server holds ``count`` reports whose serial starts with ``prefix``."""
    return wait_for(
        lambda: (found := serials_on_server(pipe, prefix)) and len(found) >= count and found,
        timeout,
        f"{count} reports with serial {prefix}* on the server",
    )


def queue_counts(pipe: Pipeline) -> dict[str, int]:
    """The queue block of ``wats-supervisor status --json``."""
    return pipe.status_json()["queue"]  # type: ignore[no-any-return]


# ---- the happy path -------------------------------------------------------------------------


def test_every_sample_and_distinct_copies_land_on_the_server_exactly_once_with_sources_in_done(
    pipe: Pipeline, samples_dir: Path
) -> None:
    wsjf_samples = sorted((samples_dir / "wsjf").glob("*.json"))
    wsxf_samples = sorted((samples_dir / "wsxf").glob("*.xml"))
    assert wsjf_samples and wsxf_samples
    before = pipe.server_count()
    expected_serials: list[str] = []
    dropped: dict[str, list[str]] = {"wsjf": [], "wsxf": []}

    for path in wsjf_samples:  # the genuine files as they are
        pipe.drop("wsjf", path.name, path.read_bytes())
        dropped["wsjf"].append(path.name)
        expected_serials.append(json.loads(path.read_bytes())["sn"])
    for path in wsxf_samples:
        pipe.drop("wsxf", path.name, path.read_bytes())
        dropped["wsxf"].append(path.name)
    copies = 6
    for n in range(copies):  # more of each kind: distinct content, distinct reports
        sample = wsjf_samples[n % len(wsjf_samples)]
        serial = f"E2E-J-{n:03d}"
        pipe.drop("wsjf", f"copy-{n:03d}.json", wsjf_copy(sample.read_bytes(), serial))
        dropped["wsjf"].append(f"copy-{n:03d}.json")
        expected_serials.append(serial)
        serial = f"E2E-X-{n:03d}"
        sample_x = wsxf_samples[n % len(wsxf_samples)]
        pipe.drop("wsxf", f"copy-{n:03d}.xml", wsxf_copy(sample_x.read_text("utf-8"), serial))
        dropped["wsxf"].append(f"copy-{n:03d}.xml")
        expected_serials.append(serial)
    # One report per file, but the WSXF sample is the WSJF export's report in XML: the same
    # id and the same content, so it arrives once (a duplicate, said as such).
    wsjf_ids = {json.loads(p.read_bytes())["id"].lower() for p in wsjf_samples}
    wsxf_ids = {
        m.lower()
        for p in wsxf_samples
        for m in re.findall(r'<Report\b[^>]*?\bID="([^"]+)"', p.read_text("utf-8"))
    }
    assert wsjf_ids & wsxf_ids  # as samples/SOURCES.md says
    total = len(wsjf_ids | wsxf_ids) + 2 * copies

    wait_for(lambda: pipe.server_count() >= before + total, 60, f"{total} reports on the server")
    wait_for(
        lambda: all(len(pipe.sources(c, "done")) >= len(names) for c, names in dropped.items()),
        20,
        "every source in done",
    )
    assert pipe.server_count() == before + total  # exactly N: nothing duplicated
    on_server = [h.serial_number for h in pipe.server_headers()]
    for serial in expected_serials:
        assert serial in on_server
    for serial in (s for s in expected_serials if s.startswith("E2E-")):
        assert on_server.count(serial) == 1
    for converter, names in dropped.items():
        done = {p.name for p in pipe.sources(converter, "done")}
        assert set(names) <= done
        assert pipe.files(converter, "watch") == []
        assert pipe.files(converter, "pending") == []
        assert pipe.files(converter, "error") == []
    # each report carries the station its file records, not the configured "e2e-station"
    stations = {h.station_name for h in pipe.server_headers()}
    recorded = {json.loads(p.read_bytes())["machineName"] for p in wsjf_samples}
    assert recorded <= stations and "e2e-station" not in stations
    counts = wait_for(
        lambda: (q := queue_counts(pipe)) and q["pending"] == 0 and q,
        10,
        "an empty pending queue in status --json",
    )
    assert counts["failed"] == 0 and counts["completed"] >= total


def test_events_json_shows_one_file_flowing_from_pending_to_uploaded(pipe: Pipeline) -> None:
    events = pipe.events("--all")  # heartbeats too: the first one says we are subscribed
    events.wait_for(lambda e: e["type"].endswith("heartbeat"), 20, "a heartbeat (subscribed)")
    name = "events-flow.json"
    pipe.drop("wsjf", name, small_report("E2E-EV-001"))

    def about(kind: str, key: str, value: str) -> Callable[[dict[str, Any]], bool]:
        return lambda e: e["type"] == kind and value in str(e["body"].get(key, ""))

    pending = events.wait_for(about("file.pending", "path", name), 20, "file.pending")
    assert pending["body"]["converter"] == "wsjf"
    converted = events.wait_for(about("file.converted", "path", name), 20, "file.converted")
    (report_id,) = converted["body"]["report_ids"]
    queued = events.wait_for(about("report.queued", "id", report_id), 20, "report.queued")
    assert queued["body"]["source"] == name
    uploaded = events.wait_for(about("report.uploaded", "id", report_id), 20, "report.uploaded")
    assert uploaded["src"] == "uploader"
    assert pipe.server.context.store.get(report_id) is not None


# ---- outages and refusals -------------------------------------------------------------------


def test_reports_wait_in_the_queue_while_the_server_is_unreachable_and_all_arrive_after(
    pipe: Pipeline,
) -> None:
    wait_for(lambda: queue_counts(pipe)["pending"] == 0, 20, "an empty pending queue")
    count = 6
    pipe.server.refuse_connections()
    try:
        for n in range(count):
            pipe.drop("wsjf", f"outage-{n}.json", small_report(f"E2E-OUT-{n:03d}"))
        counts = wait_for(
            lambda: (q := queue_counts(pipe)) and q["pending"] == count and q,
            30,
            f"{count} reports pending in status --json",
        )
        assert counts["failed"] == 0
        assert len(pipe.sources("wsjf", "pending")) == 0  # converted: the queue holds them
        status = pipe.status_json()
        assert status["connection"]["status"] == "OFFLINE"
        assert serials_on_server(pipe, "E2E-OUT-") == []
    finally:
        pipe.server.accept_connections()
    serials = wait_serials(pipe, "E2E-OUT-", count, timeout=30)
    assert sorted(serials) == [f"E2E-OUT-{n:03d}" for n in range(count)]
    wait_for(lambda: queue_counts(pipe)["pending"] == 0, 20, "the queue drained")
    assert queue_counts(pipe)["failed"] == 0


def test_rejected_reports_go_to_failed_with_the_servers_message_and_queue_retry_sends_them(
    pipe: Pipeline,
) -> None:
    wait_for(lambda: queue_counts(pipe)["pending"] == 0, 20, "an empty pending queue")
    failed_before = queue_counts(pipe)["failed"]
    count = 3
    pipe.server.set_faults(reject_next_reports=count)
    for n in range(count):
        pipe.drop("wsjf", f"rejected-{n}.json", small_report(f"E2E-REJ-{n:03d}"))
    wait_for(
        lambda: queue_counts(pipe)["failed"] == failed_before + count,
        30,
        f"{count} reports in failed/",
    )
    listed = pipe.cli("queue", "list", "--state", "failed", "--json")
    assert listed.returncode == 0, listed.stderr
    failed = [r for r in json.loads(listed.stdout) if "rejected-" in (r["source_file"] or "")]
    assert len(failed) == count
    for row in failed:
        assert "HTTP 400" in row["last_error"]
        assert "report rejected (fault injection)" in row["last_error"]
    assert serials_on_server(pipe, "E2E-REJ-") == []

    retried = pipe.cli("queue", "retry", "--all-failed")
    assert retried.returncode == 0, retried.stderr
    serials = wait_serials(pipe, "E2E-REJ-", count, timeout=30)
    assert sorted(serials) == [f"E2E-REJ-{n:03d}" for n in range(count)]
    wait_for(lambda: queue_counts(pipe)["failed"] == 0, 10, "failed/ emptied")


# ---- bad input ------------------------------------------------------------------------------


BAD_INPUT: dict[str, tuple[str, bytes]] = {
    "empty": ("wsjf", b""),
    "garbage": ("wsjf", bytes(range(256)) * 64),
    "truncated-json": ("wsjf", small_report("E2E-BAD-TRUNC")[:-40]),
    "empty-xml": ("wsxf", b""),
    "garbage-xml": ("wsxf", b"\x00\xff\xfe" * 1000),
}


def test_bad_input_goes_to_the_error_folder_with_a_reason_while_good_files_keep_flowing(
    pipe: Pipeline, samples_dir: Path
) -> None:
    wsxf_sample = (samples_dir / "wsxf" / "uut-wsxf-export.xml").read_text("utf-8")
    bad: dict[str, tuple[str, bytes]] = {
        name: (conv, data) for name, (conv, data) in BAD_INPUT.items()
    }
    truncated_xml = wsxf_copy(wsxf_sample, "E2E-BAD-XTRUNC")
    bad["truncated-xml"] = ("wsxf", truncated_xml[: len(truncated_xml) // 2])
    # 20 MB of valid JSON that is not a report.
    big = b'{"rows": [' + b",".join(b'{"v": 1234567890}' for _ in range(1_200_000)) + b"]}"
    assert len(big) > 20_000_000
    bad["large"] = ("wsjf", big)
    suffix = {"wsjf": ".json", "wsxf": ".xml"}

    good = 8
    for n in range(good // 2):  # good files before, between and after the bad ones
        pipe.drop("wsjf", f"good-a{n}.json", small_report(f"E2E-GOOD-{n:03d}"))
    for name, (conv, data) in bad.items():
        pipe.drop(conv, f"bad-{name}{suffix[conv]}", data)
    # A non-UTF-8 file name: a valid report is converted, a bad one goes to error.
    pipe.drop("wsjf", b"caf\xe9-\xff-good.json", small_report("E2E-BAD-NAMEOK"))
    pipe.drop("wsjf", b"caf\xe9-\xff-bad.json", b"{not json")
    for n in range(good // 2, good):
        pipe.drop("wsjf", f"good-b{n}.json", small_report(f"E2E-GOOD-{n:03d}"))

    wait_serials(pipe, "E2E-GOOD-", good, timeout=60)
    wait_serials(pipe, "E2E-BAD-NAMEOK", 1, timeout=30)

    def error_names(conv: str) -> set[str]:
        return {p.name for p in pipe.sources(conv, "error")}

    expected_errors = {
        conv: {f"bad-{name}{suffix[conv]}" for name, (c, _) in bad.items() if c == conv}
        for conv in ("wsjf", "wsxf")
    }
    bad_name = os.fsdecode(b"caf\xe9-\xff-bad.json")
    expected_errors["wsjf"].add(bad_name)
    wait_for(
        lambda: all(expected_errors[c] <= error_names(c) for c in expected_errors),
        60,
        f"every bad file in an error folder: {expected_errors}",
    )
    for conv in ("wsjf", "wsxf"):
        for source in pipe.sources(conv, "error"):
            if source.name not in expected_errors[conv]:
                continue
            facts = pipe.error_reason(source)
            assert facts["converter"] == conv
            assert facts["reason"] == "rejected", facts  # the converter declined the file
            assert facts["message"], facts
    assert "empty" in pipe.error_reason(pipe.folders("wsjf").error / "bad-empty.json")["message"]
    done = {p.name for p in pipe.sources("wsjf", "done")}
    assert os.fsdecode(b"caf\xe9-\xff-good.json") in done
    expected_good = [f"E2E-GOOD-{n:03d}" for n in range(good)]
    assert sorted(serials_on_server(pipe, "E2E-GOOD-")) == expected_good
    assert serials_on_server(pipe, "E2E-BAD-") == ["E2E-BAD-NAMEOK"]


def test_a_file_deleted_during_its_conversion_neither_stalls_nor_breaks_the_pipeline(
    pipe: Pipeline, samples_dir: Path
) -> None:
    """Race a delete against the converter: however the race ends (the file deleted before it
    was read, while in the sandbox, or after its report was queued) the pipeline goes on and no
    error file is made for a file that no longer exists."""
    sample = (samples_dir / "wsjf" / "new_report_example.json").read_bytes()
    pending = pipe.folders("wsjf").pending
    outcomes: list[str] = []
    rounds = 4
    for n in range(rounds):
        name = f"vanishing-{n}.json"
        target = pending / name
        deleted = threading.Event()

        def delete_when_pending(target: Path = target, deleted: threading.Event = deleted) -> None:
            try:
                wait_for(target.exists, 20, f"{target.name} in pending", step=0.001)
                target.unlink()
                deleted.set()
            except (AssertionError, FileNotFoundError):
                pass  # the converter won the race outright

        racer = threading.Thread(target=delete_when_pending, daemon=True)
        racer.start()
        pipe.drop("wsjf", name, wsjf_copy(sample, f"E2E-VAN-{n:03d}"))
        racer.join(30)
        outcomes.append("deleted" if deleted.is_set() else "converted first")
    # A file dropped after the races still flows through.
    pipe.drop("wsjf", "after-races.json", small_report("E2E-AFTER-RACE"))
    wait_serials(pipe, "E2E-AFTER-RACE", 1, timeout=30)
    for n in range(rounds):
        assert len(serials_on_server(pipe, f"E2E-VAN-{n:03d}")) <= 1
        assert not (pipe.folders("wsjf").error / f"vanishing-{n}.json").exists(), outcomes
        assert not (pipe.folders("wsjf").pending / f"vanishing-{n}.json").exists(), outcomes


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_goes_to_error_and_others_still_arrive(pipe: Pipeline) -> None:
    path = pipe.watch("wsjf") / "locked.json"
    path.write_bytes(small_report("E2E-LOCKED"))
    os.chmod(path, 0)
    pipe.drop("wsjf", "after-locked.json", small_report("E2E-AFTER-LOCKED"))
    wait_serials(pipe, "E2E-AFTER-LOCKED", 1, timeout=30)
    error = pipe.folders("wsjf").error / "locked.json"
    wait_for(error.exists, 30, "locked.json in the error folder")
    facts = pipe.error_reason(error)
    assert facts["reason"] in {"exception", "rejected"} and facts["message"]
