"""Random SIGKILLs of the pipeline workers every few hundred ms, and of the supervisor once.

Issue 12, point 5: killing a worker is not evidence against the file it held. A real supervisor
runs the watcher, converter and uploader delivering to an embedded server; distinct WSJF reports
are dropped into a watch folder while a chaos thread SIGKILLs a random RUNNING pipeline worker
(not its sandboxes) every 200-500 ms, and the supervisor once, half way. Each worker process
becomes a candidate after a lifetime drawn for it (exponential, mean 1 s, at most 3 s): short
ones kill a converter while its sandbox starts and its first files are in hand, again and again
(where counting kills against files quarantined good ones), long ones let work through. The
flapping breaker is raised for the run (it is right to trip otherwise). The converter keeps its
default
``max_retries`` (3), ``max_worker_deaths`` (10) and ``retry_delay_seconds`` (30 s): a kill
counted against a file would quarantine good files, or hold them for 30 s each.

At the end: every file's report is on the server exactly once, no file in error/ or failed/,
nothing left in pending (folder or queue), no temp file anywhere in the instance's folders.

Short by default (``WATS_CHAOS_FILES``, 80 files, part of ``make test``); ``make chaos`` runs
it with 1,000 files (see docs/benchmarks.md, "Chaos").
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import psutil
import pytest

from tests.support.pipeline_harness import Pipeline, pipeline, small_report, temp_files, wait_for

FILES = int(os.environ.get("WATS_CHAOS_FILES", "80"))
SEED = int(os.environ.get("WATS_CHAOS_SEED", "20261207"))
KILL_EVERY = (0.2, 0.5)  # seconds between two kills, drawn uniformly
# A worker process is a candidate once it has been RUNNING for a lifetime drawn for it: mostly
# short, sometimes long enough to get work done (a pipeline whose every worker died before it
# was up would test nothing but start-up).
MEAN_LIFETIME, MAX_LIFETIME = 1.0, 3.0
BATCH = max(10, FILES // 20)  # files dropped at a time; the next batch waits for kills:
KILLS_PER_BATCH = 3  # so kills fall among the work however fast this machine converts
VICTIMS = ("watcher", "converter", "uploader")
# The run's own bound: generous, since a 2-core machine may be shared (no wall-clock assertion).
DEADLINE = 120 + 1.0 * FILES

pytestmark = pytest.mark.timeout(int(DEADLINE) + 120)

# Restarts every few hundred ms are the point of the run: the breaker would rightly trip.
NO_BREAKER = {"flap_max_restarts": 100_000, "flap_window_seconds": 1.0}


@dataclass
class Chaos:
    """The killing thread: what it killed, and a switch to pause it (supervisor restart)."""

    pipe: Pipeline
    rng: random.Random
    kills: Counter[str] = field(default_factory=Counter)
    due: dict[int, float] = field(default_factory=dict)  # pid -> when it may be killed
    stop: threading.Event = field(default_factory=threading.Event)
    paused: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)

    def run(self) -> None:
        try:
            while not self.stop.wait(self.rng.uniform(*KILL_EVERY)):
                if not self.paused.is_set():
                    self._kill_one()
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)

    def _kill_one(self) -> None:
        try:
            pids = self.pipe.worker_pids()
        except (OSError, TimeoutError, ValueError, KeyError, AssertionError):
            return  # the supervisor is busy or restarting: try at the next tick
        now = time.monotonic()
        for name in VICTIMS:
            pid = pids.get(name)
            if pid:
                lifetime = min(self.rng.expovariate(1 / MEAN_LIFETIME), MAX_LIFETIME)
                self.due.setdefault(pid, now + lifetime)
        running = [n for n in VICTIMS if pids.get(n) and now >= self.due[pids[n]]]
        if not running:
            return
        victim = self.rng.choice(running)
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pids[victim] or 0), signal.SIGKILL)
            self.kills[victim] += 1


def test_random_kills_of_every_worker_lose_nothing_and_quarantine_nothing() -> None:
    rng = random.Random(SEED)
    serials = [f"RK-{n:05d}" for n in range(FILES)]
    with (
        pipeline(
            # The defaults a user has for everything that could hide a lost hint or a retry
            # behind a wait: 30 s rescans and a 30 s retry delay.
            converters={"wsjf": {"converter": "wsjf", "retry_delay_seconds": 30.0}},
            workers={
                "watcher": {"args": {"debounce_ms": 50, "rescan_seconds": 30.0}},
                "converter": {"args": {"rescan_seconds": 30.0, "max_parallel": 2}},
            },
            queue_settings={"max_in_flight": 8, "rescan_seconds": 30.0},
            start=False,
        ) as pipe,
        contextlib.ExitStack() as cleanup,
    ):
        cleanup.callback(_keep_the_instance, pipe)
        _raise_the_breaker(pipe)
        pipe.start()
        pipe.wait_workers()
        chaos = Chaos(pipe, rng)
        killer = threading.Thread(target=chaos.run, name="chaos", daemon=True)
        started = time.monotonic()
        killer.start()
        supervisor_killed = False
        dropped = 0
        dropped_at: dict[str, float] = {}
        try:
            while pipe.server_count() < FILES:
                assert time.monotonic() - started < DEADLINE, (
                    f"{pipe.server_count()} of {FILES} delivered; kills {dict(chaos.kills)}"
                )
                assert not chaos.errors, chaos.errors
                quarantined = pipe.sources("wsjf", "error")
                assert not quarantined, [pipe.error_reason(p) for p in quarantined][:3]
                kills_since = sum(chaos.kills.values()) >= KILLS_PER_BATCH * (dropped // BATCH)
                if dropped < FILES and kills_since and len(pipe.files("wsjf", "watch")) < BATCH:
                    for n in range(dropped, min(dropped + BATCH, FILES)):
                        pipe.drop_atomically("wsjf", f"r{n:05d}.json", small_report(serials[n]))
                        dropped_at[serials[n]] = time.time()
                    dropped = min(dropped + BATCH, FILES)
                if not supervisor_killed and dropped >= FILES // 2:  # with work in flight
                    chaos.paused.set()
                    _kill_and_restart_the_supervisor(pipe)
                    supervisor_killed = True
                    chaos.paused.clear()
                threading.Event().wait(0.1)  # the poll interval of the driving loop
        finally:
            chaos.stop.set()
            killer.join(timeout=10)
        delivered_after = time.monotonic() - started
        assert supervisor_killed

        def settled() -> bool:
            return (
                len(pipe.sources("wsjf", "done")) == FILES
                and pipe.files("wsjf", "pending") == []
                and pipe.queue.counts().pending == 0
            )

        wait_for(settled, 60, "every source in done and the queue drained")
        pipe.stop()
        headers = pipe.server_headers()
        on_server = Counter(h.serial_number for h in headers)
        assert {s: c for s, c in on_server.items() if c > 1} == {}
        assert set(on_server) == set(serials) and pipe.server_count() == FILES
        errors = pipe.files("wsjf", "error")
        assert errors == [], [pipe.error_reason(p) for p in pipe.sources("wsjf", "error")][:3]
        counts = pipe.queue.counts()
        assert (counts.pending, counts.failed, counts.completed) == (0, 0, FILES)
        assert pipe.files("wsjf", "watch") == [] and pipe.files("wsjf", "pending") == []
        assert list(pipe.folders("wsjf").state.glob("*.attempts.json")) == []
        leftovers = temp_files(pipe.root / "data", pipe.root / "watch")
        assert leftovers == [], leftovers
        latency = sorted(
            datetime.fromisoformat(h.received_utc.replace("Z", "+00:00")).timestamp()
            - dropped_at[h.serial_number]
            for h in headers
        )
        total = sum(chaos.kills.values())
        assert total >= 3 and set(chaos.kills) == set(VICTIMS), dict(chaos.kills)
        print(
            f"\nchaos: {FILES} files on the server in {delivered_after:.1f} s through "
            f"{total} worker kills {dict(sorted(chaos.kills.items()))} and 1 supervisor kill; "
            f"drop to server: median {latency[len(latency) // 2]:.1f} s, "
            f"max {latency[-1]:.1f} s"
        )


def _keep_the_instance(pipe: Pipeline) -> None:
    """By hand, ``WATS_CHAOS_KEEP=<folder>``: copy the instance (logs, folders) there to read."""
    keep = os.environ.get("WATS_CHAOS_KEEP")
    if keep:
        pipe.stop()
        shutil.copytree(
            pipe.root, keep, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.sock")
        )


def _raise_the_breaker(pipe: Pipeline) -> None:
    text = pipe.config_path.read_text(encoding="utf-8")
    for key, value in NO_BREAKER.items():
        lines = [ln for ln in text.splitlines() if not ln.startswith(f"{key} =")]
        at = lines.index("[supervisor]") + 1
        lines.insert(at, f"{key} = {value!r}")
        text = "\n".join(lines) + "\n"
    pipe.config_path.write_text(text, encoding="utf-8")


def _kill_and_restart_the_supervisor(pipe: Pipeline) -> None:
    """SIGKILL the supervisor; its workers exit as orphans; start it again."""
    workers = [p for p in pipe.worker_pids().values() if p]
    pipe.kill_supervisor()

    def gone() -> bool:
        return not any(_alive(p) for p in workers)

    wait_for(gone, 20, "the orphaned workers to exit")
    pipe.start()
    pipe.wait_workers(timeout=60)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
