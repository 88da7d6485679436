"""Crash safety of the whole pipeline (DESIGN invariants 1-4): 1,000 files, kill -9 everywhere.

A real supervisor runs the watcher, converter and uploader; 1,000 small WSJF files (distinct
serials) are dropped into the watch folder while, at random moments (a seeded RNG picks progress
points), the watcher, the converter, the uploader and the supervisor itself are SIGKILLed — the
supervisor is started again after it dies. At the end every report is on the server exactly once,
every source file is in done (or error, which would fail the count), and no temp file remains.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable

import psutil
import pytest

from tests.support.pipeline_harness import Pipeline, pipeline, small_report, temp_files, wait_for

pytestmark = pytest.mark.timeout(240)

FILES = 1000
BATCH = 100
SEED = int(os.environ.get("WATS_CHAOS_SEED", "20240501"))
VICTIMS = ("watcher", "converter", "uploader", "supervisor")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill_worker(pipe: Pipeline, name: str) -> int:
    """SIGKILL worker ``name`` (pid from ``status --json``); wait for its replacement."""
    status = pipe.status_json()
    (entry,) = [w for w in status["workers"] if w["name"] == name]
    pid = int(entry["pid"])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not _alive(pid), 10, f"{name} pid {pid} gone")

    def replaced() -> bool:
        new = pipe.worker_pids().get(name)
        return bool(new and new != pid)

    wait_for(replaced, 20, f"{name} restarted")
    return pid


def _kill_supervisor(pipe: Pipeline) -> int:
    """SIGKILL the supervisor, wait for its orphaned workers to go, start it again."""
    workers = [p for p in pipe.worker_pids().values() if p]
    pid = pipe.kill_supervisor()
    wait_for(lambda: not any(_alive(p) for p in workers), 15, "orphaned workers to exit")
    pipe.start()
    pipe.wait_workers()
    return pid


def _progress(pipe: Pipeline) -> int:
    """How far the run is: reports converted (sources in done) plus reports on the server."""
    return len(pipe.files("wsjf", "done")) + pipe.server_count()


def test_every_report_lands_exactly_once_through_kill_9_of_every_process() -> None:
    rng = random.Random(SEED)
    kills = list(VICTIMS) * 2
    rng.shuffle(kills)
    # Kill points spread over the run: progress counts files converted + reports uploaded.
    points = sorted(rng.sample(range(20, 2 * FILES - 100), len(kills)))
    serials = [f"CHAOS-{n:05d}" for n in range(FILES)]
    bodies = [small_report(serial) for serial in serials]
    with pipeline(
        converters={"wsjf": {"converter": "wsjf", "max_retries": 20}},
        workers={
            "watcher": {"args": {"debounce_ms": 50, "rescan_seconds": 1.0}},
            "converter": {"args": {"rescan_seconds": 1.0, "max_parallel": 2}},
        },
        queue_settings={"max_in_flight": 8, "rescan_seconds": 1.0},
    ) as pipe:
        pipe.wait_workers()
        started = time.monotonic()
        deadline = started + 150
        done_folder = pipe.folders("wsjf").done
        dropped = 0
        done_kills: list[tuple[str, int, int]] = []
        while kills or dropped < FILES:
            assert time.monotonic() < deadline, f"no progress; kills so far {done_kills}"
            if dropped < FILES and len(os.listdir(done_folder)) >= dropped - 2 * BATCH:
                # Keep files arriving all along (the watcher has work when it is killed),
                # written as a station's atomic writer would.
                for n in range(dropped, min(dropped + BATCH, FILES)):
                    pipe.drop_atomically("wsjf", f"r{n:05d}.json", bodies[n])
                dropped = min(dropped + BATCH, FILES)
            elif kills and _progress(pipe) >= points[0]:
                victim, point = kills.pop(0), points.pop(0)
                if victim == "supervisor":
                    pid = _kill_supervisor(pipe)
                else:
                    pid = _kill_worker(pipe, victim)
                done_kills.append((victim, point, pid))
            else:
                threading.Event().wait(0.05)  # poll interval of the chaos loop
        assert sorted(v for v, _, _ in done_kills) == sorted(list(VICTIMS) * 2)

        def delivered() -> bool:
            return pipe.server_count() >= FILES

        wait_for(delivered, 120, f"{FILES} reports on the server (kills: {done_kills})")
        settled: Callable[[], bool] = lambda: (  # noqa: E731
            len(pipe.sources("wsjf", "done")) + len(pipe.sources("wsjf", "error")) == FILES
            and pipe.queue.counts().pending == 0
        )
        wait_for(settled, 30, "every source settled and the queue drained")
        elapsed = time.monotonic() - started
        pipe.stop()

        headers = pipe.server_headers()
        on_server = Counter(h.serial_number for h in headers)
        duplicates = {s: c for s, c in on_server.items() if c > 1}
        assert not duplicates, duplicates
        assert pipe.server_count() == FILES
        assert set(on_server) == set(serials)
        assert pipe.files("wsjf", "watch") == []
        assert pipe.files("wsjf", "pending") == []
        assert len(pipe.sources("wsjf", "done")) == FILES, pipe.sources("wsjf", "error")[:5]
        counts = pipe.queue.counts()
        assert (counts.pending, counts.failed, counts.completed) == (0, 0, FILES)
        leftovers = temp_files(pipe.root / "data", pipe.root / "watch")
        assert leftovers == [], leftovers
        print(f"{FILES} files through {len(done_kills)} kills in {elapsed:.1f} s: {done_kills}")


def test_temp_files_a_killed_converter_left_are_removed_when_it_starts_again() -> None:
    """What a kill -9 in the middle of a durable write leaves: ``.<name>.<random>.tmp`` files in
    the converter's state and error folders and in the queue's pending folder."""
    with pipeline(converters={"wsjf": {"converter": "wsjf"}}, start=False) as pipe:
        folders = pipe.folders("wsjf")
        digest = "ab" * 32
        leftovers = [
            folders.state / f".{digest}.attempts.json.0123456789ab.tmp",
            folders.error / ".r1.json.error.json.0123456789ab.tmp",
            pipe.queue.folder("pending") / ".09c93261-bc2b-547c-b257-c2b136079be3.json.0a1b.tmp",
        ]
        someone_elses = folders.state / ".watcher-kept.jsonl.0123456789ab.tmp"
        for path in [*leftovers, someone_elses]:
            path.write_bytes(b"half a write")
        pipe.start()
        pipe.wait_workers()
        wait_for(lambda: not any(p.exists() for p in leftovers), 20, "the temp files removed")
        assert someone_elses.exists()  # the watcher's ledger is not the converter's to clean
