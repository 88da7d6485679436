"""The converter sandbox with real processes: a fork server and forked, rlimited grandchildren
running converters that misbehave on purpose (tests/support/bad_converters.py)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.bus_harness import wait_until
from wats.api.models import parse_report
from wats.converters.identity import content_hash, report_id
from wats.converters.sandbox import Sandbox, SandboxLimits
from wats.queue.item import encode_report

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the sandbox is POSIX (fork)")

ROOT = Path(__file__).resolve().parents[2]
BAD = "tests.support.bad_converters"
CONTEXT = {"station": {"name": "st-1", "location": "lab", "purpose": "test"}}
LIMITS = SandboxLimits(address_space_mb=1024, cpu_seconds=2, open_files=64, wall_seconds=3.0)


def sandbox_env() -> dict[str, str]:
    """The fork server must import tests.support: put the project root on its path."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(LIMITS, env=sandbox_env()) as running:
        yield running


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "result.txt"
    path.write_text("SN-1\nSN-2\n")
    return path


def test_good_converter_returns_report_dicts_and_its_confidence(sandbox: Sandbox, source: Path):
    outcome = sandbox.convert(f"{BAD}:SimpleText", {"confidence": 0.75}, source, CONTEXT)
    assert outcome.ok and outcome.failure is None
    assert [r["sn"] for r in outcome.reports] == ["SN-1", "SN-2"]
    assert outcome.confidence == 0.75
    assert outcome.warnings == ["checked"]


def test_stamp_request_returns_final_queue_bodies_with_derived_ids_and_station(
    sandbox: Sandbox, source: Path
):
    digest = content_hash(source)
    context = {**CONTEXT, "stamp": {"name": "line-1", "digest": digest}}
    outcome = sandbox.convert(f"{BAD}:SimpleText", {}, source, context)
    assert outcome.ok and outcome.reports == []
    bodies = [json.loads(body) for body in outcome.report_json]
    assert [b["id"] for b in bodies] == [report_id("line-1", digest, i) for i in (0, 1)]
    # the file's station wins; the decision travels beside each body
    assert {(b["machineName"], b["location"], b["purpose"]) for b in bodies} == {
        ("from-source", "nowhere", "test")
    }
    assert [i["id_origin"] for i in outcome.identities] == ["derived", "derived"]
    assert outcome.identities[0]["origins"] == {
        "name": "file",
        "location": "file",
        "purpose": "config",  # equal to the configured purpose
    }
    assert [parse_report(b).sn for b in bodies] == ["SN-1", "SN-2"]
    assert outcome.report_json[0] == encode_report(bodies[0])  # the queue's own form


def test_stamp_request_with_override_stamps_the_configured_station(
    sandbox: Sandbox, source: Path
):
    stamp = {"name": "line-1", "digest": content_hash(source), "override_file_station": True}
    outcome = sandbox.convert(f"{BAD}:SimpleText", {}, source, {**CONTEXT, "stamp": stamp})
    assert outcome.ok
    bodies = [json.loads(body) for body in outcome.report_json]
    assert {(b["machineName"], b["location"], b["purpose"]) for b in bodies} == {
        ("st-1", "lab", "test")
    }


def test_raising_converter_fails_with_exception_and_traceback(sandbox: Sandbox, source: Path):
    outcome = sandbox.convert(f"{BAD}:Raises", {}, source, CONTEXT)
    assert not outcome.ok
    assert outcome.failure == "exception"
    assert "cannot make sense of result.txt" in outcome.message
    assert outcome.detail["exception"] == "ValueError"
    assert "bad_converters.py" in outcome.detail["traceback"]


def test_endless_converter_is_killed_at_the_wall_clock_timeout(sandbox: Sandbox, source: Path):
    started = time.monotonic()
    outcome = sandbox.convert(f"{BAD}:LoopsForever", {}, source, CONTEXT)
    assert outcome.failure == "timeout"
    assert LIMITS.wall_seconds <= time.monotonic() - started < LIMITS.wall_seconds + 2


def test_cpu_burning_converter_hits_the_cpu_limit(source: Path):
    # A wall clock well above the CPU limit: on a busy machine CPU time accrues slowly.
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=30)
    with Sandbox(limits, env=sandbox_env()) as own:
        outcome = own.convert(f"{BAD}:BurnsCpu", {}, source, CONTEXT)
    assert outcome.failure == "limit"
    assert outcome.detail["limit"] == "cpu_seconds"


def test_allocating_far_past_the_address_space_limit_fails_with_limit(
    sandbox: Sandbox, source: Path
):
    outcome = sandbox.convert(f"{BAD}:AllocatesTooMuch", {}, source, CONTEXT)
    assert outcome.failure == "limit"
    assert outcome.detail["limit"] == "address_space"


def test_opening_too_many_files_fails_with_limit(sandbox: Sandbox, source: Path):
    outcome = sandbox.convert(f"{BAD}:OpensTooManyFiles", {}, source, CONTEXT)
    assert outcome.failure == "limit"
    assert outcome.detail["limit"] == "open_files"


def test_segfaulting_converter_is_a_crash_naming_the_signal(sandbox: Sandbox, source: Path):
    outcome = sandbox.convert(f"{BAD}:Segfaults", {}, source, CONTEXT)
    assert outcome.failure == "crash"
    assert outcome.detail["signal"] == signal.SIGSEGV
    assert outcome.detail["signal_name"] == "SIGSEGV"


def test_non_report_result_is_invalid(sandbox: Sandbox, source: Path):
    outcome = sandbox.convert(f"{BAD}:ReturnsNotAReport", {}, source, CONTEXT)
    assert outcome.failure == "invalid"


def test_unloadable_converter_is_an_exception_naming_the_spec(sandbox: Sandbox, source: Path):
    outcome = sandbox.convert(f"{BAD}:NoSuchConverter", {}, source, CONTEXT)
    assert outcome.failure == "exception"
    assert "NoSuchConverter" in outcome.message


def test_printing_converter_output_is_captured_and_conversion_succeeds(
    sandbox: Sandbox, source: Path
):
    outcome = sandbox.convert(f"{BAD}:PrintsToStdout", {}, source, CONTEXT)
    assert outcome.ok and len(outcome.reports) == 2
    assert "converting result.txt" in outcome.stdout
    assert "a note on stderr" in outcome.stderr


def test_captured_output_is_truncated_to_the_limit(tmp_path: Path, source: Path):
    limits = SandboxLimits(wall_seconds=5, max_output_bytes=10)
    with Sandbox(limits, env=sandbox_env()) as small:
        outcome = small.convert(f"{BAD}:PrintsToStdout", {}, source, CONTEXT)
    assert outcome.ok
    assert outcome.stdout.startswith("converting")
    assert "more bytes not kept" in outcome.stdout


def test_child_runs_with_limits_closed_stdin_private_cwd_and_no_inherited_descriptors(
    sandbox: Sandbox, source: Path
):
    outcome = sandbox.convert(f"{BAD}:ReportsItsProcess", {}, source, CONTEXT)
    facts = dict(w.split("=", 1) for w in outcome.warnings)
    fds = [int(fd) for fd in facts["fds"].split(",")]
    # 0-2, the job and result pipes, and the fd listdir itself opened: none of the worker's.
    assert len(fds) <= 6, fds
    assert facts["stdin"] == "b''"
    assert Path(facts["cwd"]).name.startswith("wats-sandbox-")
    assert not Path(facts["cwd"]).exists()  # the private temp dir is removed afterwards
    assert int(facts["as"]) == LIMITS.address_space_mb * 1024 * 1024
    assert int(facts["nofile"]) == LIMITS.open_files
    assert int(facts["cpu"]) == LIMITS.cpu_seconds


def test_writes_outside_the_temp_dir_are_not_prevented(
    sandbox: Sandbox, source: Path, tmp_path: Path
):
    """rlimits do not confine the filesystem: the write outside lands (documented). What the
    sandbox does give: a private cwd, so relative writes stay in it and vanish with it."""
    target = tmp_path / "outside.txt"
    outcome = sandbox.convert(
        f"{BAD}:WritesOutsideTempDir", {"target": str(target)}, source, CONTEXT
    )
    assert outcome.ok
    assert target.read_text().startswith("written from ")
    cwd = Path(target.read_text().removeprefix("written from "))
    assert cwd != Path.cwd() and not cwd.exists()
    assert not (Path.cwd() / "scratch.txt").exists()


def test_sigkilled_fork_server_is_restarted_transparently(sandbox: Sandbox, source: Path):
    first = sandbox.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_until(
        lambda: not psutil.pid_exists(first) or psutil.Process(first).status() == "zombie",
        5,
        "fork server gone",
    )
    outcome = sandbox.convert(f"{BAD}:SimpleText", {}, source, CONTEXT)
    assert outcome.ok
    assert sandbox.pid not in (None, first)


def test_converter_killing_the_fork_server_fails_that_job_and_the_next_one_runs(
    sandbox: Sandbox, tmp_path: Path, source: Path
):
    deadly = tmp_path / "deadly.txt"
    deadly.write_text("kill")
    outcome = sandbox.convert(f"{BAD}:KillsItsSandbox", {}, deadly, CONTEXT)
    assert outcome.failure == "crash"
    assert outcome.detail["fork_server_died"] is True
    assert sandbox.convert(f"{BAD}:KillsItsSandbox", {}, source, CONTEXT).ok


def test_fork_server_exits_when_its_owner_closes_it(source: Path):
    sandbox = Sandbox(LIMITS, env=sandbox_env()).start()
    pid = sandbox.pid
    assert pid is not None
    sandbox.close()
    assert not psutil.pid_exists(pid)


def test_a_timeout_kills_what_the_converter_spawned(sandbox: Sandbox, tmp_path: Path):
    """The grandchild leads its own process group; the kill takes the whole group."""
    source = tmp_path / "x.txt"
    source.write_text("x")
    before = {p.pid for p in psutil.process_iter()}
    outcome = sandbox.convert(f"{BAD}:LoopsForever", {}, source, CONTEXT)
    assert outcome.failure == "timeout"
    leftovers = [
        p
        for p in psutil.process_iter(["ppid"])
        if p.pid not in before and p.info["ppid"] == sandbox.pid
    ]
    assert leftovers == []


# ---- reusing the child -----------------------------------------------------------------------


def _facts(outcome) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert outcome.ok, (outcome.failure, outcome.message)
    return dict(w.split("=", 1) for w in outcome.warnings)


def _drop(tmp_path: Path, name: str, text: str = "SN-1\n") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_well_behaved_child_converts_the_next_file_with_fresh_cwd_and_output(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    first = sandbox.convert(f"{BAD}:Remembers", {}, _drop(tmp_path, "a.txt"), CONTEXT)
    second = sandbox.convert(f"{BAD}:Remembers", {}, _drop(tmp_path, "b.txt"), CONTEXT)
    one, two = _facts(first), _facts(second)
    assert one["pid"] == two["pid"] and (one["count"], two["count"]) == ("1", "2")
    # each job starts in an empty private dir, and captures only its own output
    assert one["cwd_files"] == two["cwd_files"] == "['scratch.txt']"
    assert first.stdout == "converting a.txt\n" and second.stdout == "converting b.txt\n"


def test_a_child_that_left_a_thread_running_is_not_reused(sandbox: Sandbox, tmp_path: Path) -> None:
    first = sandbox.convert(
        f"{BAD}:Remembers", {}, _drop(tmp_path, "a.txt", "leave-thread\nSN-1\n"), CONTEXT
    )
    second = sandbox.convert(f"{BAD}:Remembers", {}, _drop(tmp_path, "b.txt"), CONTEXT)
    assert _facts(first)["pid"] != _facts(second)["pid"]
    assert _facts(second)["count"] == "1"


def test_one_conversion_per_child_forks_a_fresh_process_for_every_file(tmp_path: Path) -> None:
    limits = SandboxLimits(
        address_space_mb=1024, cpu_seconds=2, wall_seconds=5.0, conversions_per_child=1
    )
    with Sandbox(limits, env=sandbox_env()) as fresh_each_time:
        pids = {
            _facts(fresh_each_time.convert(f"{BAD}:Remembers", {}, _drop(tmp_path, n), CONTEXT))[
                "pid"
            ]
            for n in ("a.txt", "b.txt", "c.txt")
        }
    assert len(pids) == 3


def test_a_crash_in_a_reused_child_is_retried_in_a_fresh_one_before_blaming_the_file(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    first = sandbox.convert(f"{BAD}:Remembers", {}, _drop(tmp_path, "a.txt"), CONTEXT)
    # crashes only where another file was converted before: the fresh retry succeeds
    second = sandbox.convert(
        f"{BAD}:Remembers", {}, _drop(tmp_path, "b.txt", "crash-if-reused\nSN-2\n"), CONTEXT
    )
    assert _facts(second)["count"] == "1"
    assert _facts(second)["pid"] != _facts(first)["pid"]
