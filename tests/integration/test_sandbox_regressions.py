"""Regressions of the converter sandbox found by the end-to-end tests.

Threads: the fork server asks for SIGKILL when its parent dies (PR_SET_PDEATHSIG), which Linux
delivers when the parent *thread* that started it exits. Started from a job thread, it was killed
as soon as that job ended, and the next file given to it failed as a "fork server died" crash
(counted against that file, up to quarantining it as poison).

File names: the source path went to the fork server as a msgpack string, which cannot hold a
non-UTF-8 file name; the worker's job raised, the file was retried until quarantined as poison.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.pipeline_harness import small_report, wait_for
from wats.converters.sandbox import Sandbox, SandboxLimits, SandboxOutcome

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux"),
]

CONTEXT = {
    "station": {"name": "s", "location": "l", "purpose": "p"},
    "reference_file": None,
    "converter_name": "wsjf",
    "reject_threshold": 0.2,
    "validate": False,
}


def in_a_thread_that_ends(work: Callable[[], SandboxOutcome]) -> SandboxOutcome:
    """Run ``work`` in a thread that ends afterwards, as the converter worker's jobs do."""
    box: dict[str, SandboxOutcome] = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", work()))
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    return box["result"]


def test_a_fork_server_started_from_a_job_thread_outlives_that_thread(tmp_path: Path) -> None:
    source = tmp_path / "one.json"
    source.write_bytes(small_report("THREAD-1"))
    with Sandbox(SandboxLimits(wall_seconds=20)) as sandbox:
        sandbox.close()  # started in this thread by __enter__: start over from a job thread
        first = in_a_thread_that_ends(lambda: sandbox.convert("wsjf", {}, source, CONTEXT))
        assert first.ok, first
        pid = sandbox.pid
        assert pid is not None
        # The job thread is gone. A SIGKILL from the kernel would arrive right away; give it
        # a moment to show (bounded), then the next conversion must use the same fork server.
        killed = False
        try:
            wait_for(lambda: sandbox.pid is None, 1.0, "the fork server to die")
            killed = True
        except AssertionError:
            pass
        assert not killed, "the fork server died when the thread that started it ended"
        second = in_a_thread_that_ends(lambda: sandbox.convert("wsjf", {}, source, CONTEXT))
        assert second.ok, second
        assert not second.detail.get("fork_server_died")
        assert sandbox.pid == pid
        assert sandbox.starts == 2


def test_a_file_whose_name_is_not_utf8_is_converted(tmp_path: Path) -> None:
    name = os.path.join(os.fsencode(tmp_path), b"caf\xe9-\xff.json")
    with open(name, "wb") as handle:
        handle.write(small_report("NAME-1"))
    with Sandbox(SandboxLimits(wall_seconds=20)) as sandbox:
        outcome = sandbox.convert("wsjf", {}, os.fsdecode(name), CONTEXT)
    assert outcome.ok, outcome
    assert [r["sn"] for r in outcome.reports] == ["NAME-1"]
