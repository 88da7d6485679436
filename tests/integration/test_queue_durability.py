"""Invariant 2 for the queue: a SIGKILL at any instant leaves complete files and no torn state.

Two ways of killing a process that works on the queue:

- deterministic kill points: a forked child counts its filesystem calls (open, write, fsync,
  rename, unlink) and SIGKILLs itself right before call number N, for 200 values of N over a
  queue that carries on from one killed child to the next (each child first runs ``recover``,
  as the uploader does at start);
- random moments: a real ``python`` subprocess enqueueing and marking in a loop, SIGKILLed by
  the test at a random delay after it has started working.

After each kill every queue file must parse and hold the expected report, no report id may sit
in two folders except the one documented interrupted move (pending + completed), and every
report whose enqueue returned must still be in the queue. After ``recover`` no temp files and no
duplicates remain.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wats.fsutil import is_temp_name
from wats.queue import ReportQueue

pytestmark = pytest.mark.skipif(os.name == "nt", reason="fork and SIGKILL are POSIX")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_NAMESPACE = uuid.UUID("6b0c3f4e-2a51-4c57-9d0e-0e3d1c1f5a10")
_PAD = "x" * 4_000  # a torn write would show as broken JSON


def report_for(report_id: str) -> dict[str, Any]:
    return {"id": report_id, "type": "T", "pn": "PN", "sn": f"SN-{report_id}", "pad": _PAD}


def ids_of_round(round_no: int, count: int = 2) -> list[str]:
    return [str(uuid.uuid5(_NAMESPACE, f"{round_no}:{j}")) for j in range(count)]


def do_round(root: Path, round_no: int, ack: Callable[[str], None]) -> None:
    """One restart's worth of queue work: repair, enqueue, re-enqueue old ids, process due."""
    queue = ReportQueue(root)
    queue.recover(stale_temp_s=0)  # single writer here: every temp file is a dead one's
    for report_id in ids_of_round(round_no):
        queue.enqueue(report_for(report_id), converter="c", source_file="s", station="st")
        ack(report_id)
    if round_no:
        for report_id in ids_of_round(round_no - 1):  # a converter redoing a file: no-ops
            queue.enqueue(report_for(report_id), converter="c", source_file="s", station="st")
    for n, item in enumerate(queue.due(now=time.time() + 1e9, limit=3)):
        choice = (round_no + n) % 4
        if choice == 0:
            queue.mark_uploaded(item.id)
        elif choice == 1:
            queue.mark_retry(item.id, "HTTP 503", next_attempt=0.0)
        elif choice == 2:
            queue.mark_failed(item.id, "HTTP 400: bad")
        else:
            queue.retry_all_failed()


def arm_tripwire(kill_at: int) -> None:
    """SIGKILL this process right before its ``kill_at``-th filesystem call."""
    counter = [0]

    def tripwire(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            counter[0] += 1
            if counter[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        return wrapped

    for name in ("open", "write", "fsync", "replace", "rename", "unlink"):
        setattr(os, name, tripwire(getattr(os, name)))


def assert_consistent(root: Path, acked: set[str], *, after_recover: bool) -> None:
    where: dict[str, list[str]] = {}
    for state in ("pending", "failed", "completed"):
        for path in (root / state).iterdir():
            if is_temp_name(path.name):
                assert not after_recover, f"temp file left after recover: {path}"
                continue
            document = json.loads(path.read_bytes())  # never a torn file
            report_id = path.stem
            assert document["meta"]["id"] == report_id
            assert document["report"] == report_for(report_id)
            where.setdefault(report_id, []).append(state)
    for report_id, states in where.items():
        if len(states) > 1:
            assert not after_recover, f"{report_id} in {states} after recover"
            assert sorted(states) == ["completed", "pending"], f"{report_id} in {states}"
    lost = acked - set(where)
    assert not lost, f"acknowledged reports lost: {sorted(lost)}"


def run_forked(root: Path, round_no: int, kill_at: int) -> tuple[int, set[str]]:
    """Run one round in a forked child armed to die at ``kill_at``; (signal or 0, acked ids)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            os.close(read_fd)
            ack_out = os.write
            arm_tripwire(kill_at)
            do_round(root, round_no, lambda rid: ack_out(write_fd, f"{rid}\n".encode()))
            os._exit(0)
        except BaseException:
            os._exit(3)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) or os.WEXITSTATUS(status) == 0, f"child failed: {status}"
    killed = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    return killed, set(b"".join(chunks).decode().split())


def test_sigkill_at_200_filesystem_calls_leaves_only_complete_files(tmp_path: Path) -> None:
    root = tmp_path / "queue"
    rng = random.Random(20240604)
    acked: set[str] = set()
    kills = 0
    for round_no in range(200):
        killed, new_acks = run_forked(root, round_no, kill_at=rng.randint(1, 50))
        kills += killed == signal.SIGKILL
        acked |= new_acks
        assert_consistent(root, acked, after_recover=False)
    assert kills >= 150, f"only {kills} of 200 rounds were killed mid-work"
    ReportQueue(root).recover(stale_temp_s=0)
    assert_consistent(root, acked, after_recover=True)
    counts = ReportQueue(root).counts()
    assert counts.pending + counts.failed + counts.completed >= len(acked)


_LOOP = """
import sys
from pathlib import Path
from tests.integration.test_queue_durability import do_round
root, start = Path(sys.argv[1]), int(sys.argv[2])
for round_no in range(start, start + 1000):
    do_round(root, round_no, lambda rid: print(rid, flush=True))
"""


def test_a_real_process_sigkilled_at_random_moments_leaves_no_torn_state(tmp_path: Path) -> None:
    root = tmp_path / "queue"
    rng = random.Random(7)
    acked: set[str] = set()
    for attempt in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-c", _LOOP, str(root), str(attempt * 1000)],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        # wait (with a deadline) until it has enqueued something: then it is mid-work
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, "worker process never started working"
        # a random kill moment, not a synchronisation: any instant must be safe
        time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        acked |= set(out.decode().split())
        assert_consistent(root, acked, after_recover=False)
    assert acked
    ReportQueue(root).recover(stale_temp_s=0)
    assert_consistent(root, acked, after_recover=True)
