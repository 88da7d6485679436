"""Small parts of the worker package that need no processes or sockets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wats.api.errors import WatsConnectionError
from wats.config.models import ClientConfig
from wats.workers.__main__ import load_target
from wats.workers.base import ControlError, Worker, WorkerEnvironment, handles
from wats.workers.connection import ServerTarget, resolve_server
from wats.workers.health import describe_error
from wats.workers.sync import ReferenceCache
from wats.workers.testing import EchoWorker, IdleWorker


class _Commands(Worker):
    @handles("thing.do")
    def do(self, args: dict[str, Any]) -> int:
        return 1


def test_handles_registers_the_method_as_a_command_handler() -> None:
    worker = _Commands("w")
    assert worker.handlers["thing.do"]({}) == 1
    assert "worker.info" in worker.handlers


def test_echo_worker_registers_echo_and_echo_fail() -> None:
    assert {"echo", "echo.fail"} <= set(EchoWorker("e").handlers)


def test_control_error_carries_code_and_reason() -> None:
    error = ControlError("not_found", "no process with code 7")
    assert (error.code, error.reason) == ("not_found", "no process with code 7")
    assert "not_found" in str(error)


def test_worker_environment_reads_the_launch_variables(tmp_path: Path) -> None:
    env = WorkerEnvironment.from_environ(
        "sync",
        {
            "WATS_RUNTIME_DIR": str(tmp_path),
            "WATS_RUNTIME_CONFIG": str(tmp_path / "config.json"),
            "WATS_WORKER_ARGS": '{"delay": 0.5}',
            "WATS_INSTANCE": "lab",
            "WATS_SUPERVISOR_PID": "1234",
        },
    )
    assert env.runtime_dir == tmp_path
    assert env.config_path == tmp_path / "config.json"
    assert env.args == {"delay": 0.5}
    assert (env.instance, env.supervisor_pid) == ("lab", 1234)


def test_worker_environment_without_variables_means_standalone() -> None:
    env = WorkerEnvironment.from_environ("idle", {})
    assert env.runtime_dir is None and env.supervisor_pid is None and env.args == {}


def test_worker_args_that_are_not_a_json_object_are_refused() -> None:
    with pytest.raises(ValueError, match="WATS_WORKER_ARGS"):
        WorkerEnvironment.from_environ("idle", {"WATS_WORKER_ARGS": "[1, 2]"})


def test_timers_refuse_a_non_positive_interval() -> None:
    with pytest.raises(ValueError):
        IdleWorker("idle").every(0, lambda: None)


def test_load_target_imports_a_worker_class() -> None:
    assert load_target("wats.workers.testing:IdleWorker") is IdleWorker


@pytest.mark.parametrize(
    "target", ["wats.workers.testing", "wats.workers.testing:ControlError", "json:loads"]
)
def test_load_target_refuses_what_is_not_a_worker_class(target: str) -> None:
    with pytest.raises(ValueError):
        load_target(target)


def test_server_target_repr_hides_the_token() -> None:
    target = ServerTarget("http://127.0.0.1:1", "c2VjcmV0LXRva2Vu")
    assert "c2VjcmV0LXRva2Vu" not in repr(target)


def test_configured_server_takes_its_token_from_the_named_env_var(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_WATS_TOKEN", "dG9rZW4=")
    config = ClientConfig.model_validate(
        {"server": {"url": "https://wats.example.com/", "token_env": "MY_WATS_TOKEN"}}
    )
    target = resolve_server(config)
    assert (target.url, target.token, target.embedded) == (
        "https://wats.example.com",
        "dG9rZW4=",
        False,
    )


def test_embedded_server_token_comes_from_its_credentials_file(tmp_path: Path) -> None:
    config = ClientConfig.model_validate(
        {"server": {"embedded": {"port": 8099, "data_dir": str(tmp_path / "srv")}}}
    )
    target = resolve_server(config)
    stored = json.loads((tmp_path / "srv" / "credentials.json").read_text())
    assert target.embedded and target.url == "http://127.0.0.1:8099"
    assert target.token == stored["token"]


def test_describe_error_names_the_error_type() -> None:
    assert describe_error(WatsConnectionError("connection refused")).startswith(
        "WatsConnectionError: connection refused"
    )


# ---- reference cache -----------------------------------------------------------------------

_CACHE = ReferenceCache(
    processes=[{"code": 10, "name": "SW Debug"}, {"code": 20, "name": "ICT"}],
    levels=[{"levelId": 1, "levelName": "Company"}],
    product_groups=[{"productGroupId": 3, "productGroupName": "PCBA"}],
    fetched_at=1.0,
    server="http://x",
)


def test_cache_lookup_by_code_and_by_name_ignoring_case_and_spaces() -> None:
    assert _CACHE.lookup("process", 20, None) == {"code": 20, "name": "ICT"}
    assert _CACHE.lookup("process", None, "  sw debug ") == {"code": 10, "name": "SW Debug"}
    assert _CACHE.lookup("level", 1, None) == {"levelId": 1, "levelName": "Company"}
    assert _CACHE.lookup("product_group", None, "pcba") is not None
    assert _CACHE.lookup("process", 99, None) is None


def test_cache_round_trips_through_its_json_form() -> None:
    again = ReferenceCache.from_json(json.loads(json.dumps(_CACHE.to_json())))
    assert again == _CACHE


@pytest.mark.parametrize(
    "data",
    [[], {"version": 2}, {"version": 1, "processes": "x", "levels": [], "product_groups": []}],
)
def test_cache_refuses_content_it_did_not_write(data: Any) -> None:
    with pytest.raises(ValueError):
        ReferenceCache.from_json(data)
