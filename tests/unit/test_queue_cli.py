"""``wats-supervisor queue list|show|retry|purge-completed`` through the real typer app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from wats.cli.main import app
from wats.config import CONFIG_ENV
from wats.queue import QueueCounts, ReportQueue

# what the installed ``wats-supervisor`` console script runs
_CONSOLE_SCRIPT = "from wats.cli.main import app; app()"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('[paths]\ndata_dir = "data"\nruntime_dir = "run"\n')
    return path


@pytest.fixture
def queue(tmp_path: Path) -> ReportQueue:
    return ReportQueue(tmp_path / "data" / "queue")


def add(queue: ReportQueue, source: str = "/in/a.json") -> str:
    report: dict[str, Any] = {"id": str(uuid.uuid4()), "type": "T", "sn": "SN-1"}
    assert queue.enqueue(report, converter="wsjf", source_file=source, station="ST-1")
    return str(report["id"])


def invoke(config: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["queue", *args, "--config", str(config)])


def test_list_shows_counts_and_pending_and_failed_reports(config: Path, queue: ReportQueue) -> None:
    pending, failed, done = add(queue), add(queue), add(queue)
    queue.mark_failed(failed, "HTTP 400: missing serial")
    queue.mark_uploaded(done)
    result = invoke(config, "list")
    assert result.exit_code == 0, result.output
    assert "1 pending, 1 failed, 1 completed" in result.output
    assert pending in result.output and failed in result.output
    assert "HTTP 400: missing serial" in result.output
    assert done not in result.output  # completed only when asked
    completed = invoke(config, "list", "--state", "completed")
    assert done in completed.output and "failures 0" in completed.output  # uploaded first try


def test_list_json_of_one_state_has_meta_but_no_report_bodies(
    config: Path, queue: ReportQueue
) -> None:
    done = add(queue)
    queue.mark_uploaded(done)
    result = invoke(config, "list", "--state", "completed", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["id"], r["state"], r["converter"]) for r in rows] == [(done, "completed", "wsjf")]
    assert "report" not in rows[0]


def test_list_refuses_an_unknown_state(config: Path) -> None:
    result = invoke(config, "list", "--state", "lost")
    assert result.exit_code == 2


def test_show_prints_state_meta_and_report(config: Path, queue: ReportQueue) -> None:
    report_id = add(queue)
    result = invoke(config, "show", report_id.upper())
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["state"] == "pending"
    assert document["meta"]["source_file"] == "/in/a.json"
    assert document["report"]["id"] == report_id


def test_show_of_an_unknown_or_malformed_id_fails_clearly(config: Path) -> None:
    unknown = invoke(config, "show", str(uuid.uuid4()))
    assert unknown.exit_code == 1 and "not in the queue" in unknown.output
    malformed = invoke(config, "show", "../etc")
    assert malformed.exit_code == 2 and "not a report id" in malformed.output


def test_retry_moves_one_failed_report_back_and_says_the_uploader_is_not_running(
    config: Path, queue: ReportQueue
) -> None:
    report_id = add(queue)
    queue.mark_failed(report_id, "HTTP 400")
    result = invoke(config, "retry", report_id)
    assert result.exit_code == 0, result.output
    assert f"report {report_id} back in pending" in result.output
    assert "uploader not reachable" in result.output
    assert queue.counts() == QueueCounts(pending=1, failed=0, completed=0)


def test_retry_of_a_report_that_is_not_failed_names_its_state(
    config: Path, queue: ReportQueue
) -> None:
    report_id = add(queue)
    result = invoke(config, "retry", report_id)
    assert result.exit_code == 1 and "it is pending" in result.output


def test_retry_all_failed_moves_every_failed_report(config: Path, queue: ReportQueue) -> None:
    for _ in range(3):
        queue.mark_failed(add(queue), "HTTP 400")
    result = invoke(config, "retry", "--all-failed")
    assert result.exit_code == 0, result.output
    assert "3 failed report(s) back in pending" in result.output
    assert queue.counts() == QueueCounts(pending=3, failed=0, completed=0)


def test_retry_needs_exactly_one_of_an_id_or_all_failed(config: Path) -> None:
    assert invoke(config, "retry").exit_code == 2
    assert invoke(config, "retry", str(uuid.uuid4()), "--all-failed").exit_code == 2


def test_purge_completed_honours_max_count_and_all_deletes_every_completed(
    config: Path, queue: ReportQueue
) -> None:
    done = [add(queue) for _ in range(4)]
    for age, report_id in enumerate(done):
        queue.mark_uploaded(report_id)
        stamp = 1_000_000 + age
        os.utime(queue.path_for(report_id, "completed"), (stamp, stamp))
    pending = add(queue)
    result = invoke(config, "purge-completed", "--max-count", "1")
    assert result.exit_code == 0 and "deleted 3 completed report(s)" in result.output
    assert [i.id for i in queue.list("completed")] == [done[-1]]
    assert "deleted 0" in invoke(config, "purge-completed", "--max-age-days", "36500").output
    assert "deleted 1" in invoke(config, "purge-completed", "--all").output
    assert queue.counts() == QueueCounts(pending=1, failed=0, completed=0)
    assert queue.get(pending) is not None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--max-age-days", "0"], "--max-age-days must be more than 0"),
        (["--max-age-days", "-1"], "--max-age-days must be more than 0"),
        (["--max-count", "0"], "--max-count must be 1 or more"),
        ([], "give --all"),
        (["--all", "--max-count", "5"], "give it alone"),
    ],
)
def test_purge_completed_refuses_zero_limits_and_unstated_intent_deleting_nothing(
    config: Path, queue: ReportQueue, args: list[str], says: str
) -> None:
    # in the config 0 means "no limit"; here it must not quietly mean "delete everything"
    done = add(queue)
    queue.mark_uploaded(done)
    result = invoke(config, "purge-completed", *args)
    assert result.exit_code == 2
    assert says in result.stderr
    if "must be" in says:
        assert "--all" in result.stderr  # says how to delete everything on purpose
    assert queue.counts().completed == 1


def test_queue_list_runs_as_a_real_command_without_a_supervisor(
    config: Path, queue: ReportQueue, tmp_path: Path
) -> None:
    report_id = add(queue)
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
    }
    env.pop(CONFIG_ENV, None)
    done = subprocess.run(
        [sys.executable, "-c", _CONSOLE_SCRIPT, "queue", "list", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [row["id"] for row in json.loads(done.stdout)] == [report_id]


def test_status_reads_queue_counts_from_the_folders_and_prints_a_queue_line(
    config: Path, queue: ReportQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    from wats.cli import supervisor_cmd
    from wats.cli.config_cmd import load_config_or_exit
    from wats.config.paths import InstancePaths

    queue.mark_failed(add(queue), "HTTP 400")
    add(queue)
    cfg, _ = load_config_or_exit(config, None)
    counts = supervisor_cmd._queue_counts(cfg, InstancePaths.for_config(cfg))
    assert counts == {"pending": 1, "failed": 1, "completed": 0}
    status = {
        "supervisor": {"instance": "default", "pid": 1, "uptime": 5.0, "config": None},
        "connection": None,
        "workers": [],
        "queue": counts,
    }
    supervisor_cmd._print_status(status)
    assert "queue 1 pending, 1 failed, 0 completed" in capsys.readouterr().out


def add_with_id(queue: ReportQueue, report_id: str) -> str:
    report: dict[str, Any] = {"id": report_id, "type": "T", "sn": "SN-1"}
    assert queue.enqueue(report, converter="wsjf", source_file="/in/a.json", station="ST-1")
    return report_id


def test_show_and_retry_take_the_short_id_events_print(config: Path, queue: ReportQueue) -> None:
    wanted = add_with_id(queue, "3f2a1b2c-0000-4000-8000-000000000001")
    add_with_id(queue, "9abcdef0-0000-4000-8000-000000000002")
    for short in ("3f2a1b2c", "3f2a1b2c…", "3F2A"):
        result = invoke(config, "show", short)
        assert result.exit_code == 0, (short, result.output)
        assert json.loads(result.output)["report"]["id"] == wanted
    queue.mark_failed(wanted, "HTTP 400")
    result = invoke(config, "retry", "3f2a1b2c…")
    assert result.exit_code == 0, result.output
    assert f"report {wanted} back in pending" in result.output
    assert queue.counts().failed == 0


def test_an_ambiguous_short_id_lists_the_candidates_and_exits_2(
    config: Path, queue: ReportQueue
) -> None:
    first = add_with_id(queue, "3f2a1b2c-0000-4000-8000-000000000001")
    second = add_with_id(queue, "3f2a1b2c-0000-4000-8000-000000000002")
    queue.mark_failed(second, "HTTP 400")
    for command in ("show", "retry"):
        result = invoke(config, command, "3f2a1b2c")
        assert result.exit_code == 2, result.output
        assert "2 queued reports have ids starting with '3f2a1b2c'" in result.output
        assert f"{first}  pending" in result.output and f"{second}  failed" in result.output
    assert queue.counts().failed == 1  # nothing was retried


def test_a_short_id_no_report_has_exits_1(config: Path, queue: ReportQueue) -> None:
    add_with_id(queue, "3f2a1b2c-0000-4000-8000-000000000001")
    result = invoke(config, "show", "deadbeef")
    assert result.exit_code == 1
    assert "no queued report id starts with 'deadbeef'" in result.output
