"""The checks ``start`` makes before spawning workers, and the start-failure note, in-process."""

from __future__ import annotations

import socket
from pathlib import Path

from wats.config.models import ClientConfig
from wats.config.paths import InstancePaths
from wats.protocol.messages import WorkerFailure
from wats.protocol.start_failure import take_start_failure, write_start_failure
from wats.supervisor.preflight import (
    config_problems,
    exit_code,
    port_holder,
    port_in_use,
    start_problems,
)
from wats.workers.connection import embedded_identity


def _config(tmp_path: Path, port: int = 0, **converter: object) -> ClientConfig:
    return ClientConfig.model_validate(
        {
            "paths": {"data_dir": str(tmp_path / "data"), "runtime_dir": str(tmp_path / "run")},
            "server": {"embedded": {"port": port}},
            "converters": [
                {
                    "name": "ict",
                    "converter": "wsjf",
                    "watch_folder": str(tmp_path / "in"),
                    **converter,
                }
            ],
        }
    )


def test_a_missing_watch_folder_is_a_problem_naming_the_key_and_the_folder(tmp_path: Path) -> None:
    problems = config_problems(_config(tmp_path))
    assert [p.key for p in problems] == ['[[converters]] "ict" watch_folder']
    assert str(tmp_path / "in") in problems[0].message
    assert exit_code(problems) == 2
    (tmp_path / "in").mkdir()
    assert config_problems(_config(tmp_path)) == []


def test_a_file_where_the_watch_folder_should_be_is_a_problem_even_when_asked_to_create(
    tmp_path: Path,
) -> None:
    (tmp_path / "in").write_text("not a folder")
    problems = config_problems(_config(tmp_path, create_watch_folder=True))
    assert len(problems) == 1 and "is not a folder" in problems[0].message


def test_start_creates_the_watch_folder_only_where_asked(tmp_path: Path) -> None:
    cfg = _config(tmp_path, create_watch_folder=True)
    assert start_problems(cfg, InstancePaths.for_config(cfg)) == []
    assert (tmp_path / "in").is_dir()
    disabled = _config(tmp_path / "other", enabled=False)
    assert config_problems(disabled) == []  # a disabled converter is not checked
    assert not (tmp_path / "other" / "in").exists()


def test_a_port_held_by_a_listener_is_in_use_and_its_holder_is_named(tmp_path: Path) -> None:
    import os

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
        assert port_holder(port).startswith(f"held by pid {os.getpid()}")
        (tmp_path / "in").mkdir()
        cfg = _config(tmp_path, port=port)
        problems = start_problems(cfg, InstancePaths.for_config(cfg))
        assert [p.key for p in problems] == ["server.embedded.port"]
        assert f"port {port} on 127.0.0.1 is in use" in problems[0].message
    assert not port_in_use("127.0.0.1", port)


def test_the_start_failure_note_is_read_once(tmp_path: Path) -> None:
    write_start_failure(tmp_path, "server", WorkerFailure.PORT_IN_USE, "port 8080\nin use")
    record = take_start_failure(tmp_path, "server")
    assert record is not None and record.reason is WorkerFailure.PORT_IN_USE
    assert record.message == "port 8080 in use"  # one line
    assert take_start_failure(tmp_path, "server") is None
    (tmp_path / "sync.start-failure.json").write_text("{broken")
    assert take_start_failure(tmp_path, "sync") is None
    assert not (tmp_path / "sync.start-failure.json").exists()


def test_the_embedded_identity_differs_by_instance_and_by_data_folder(tmp_path: Path) -> None:
    def identity(name: str, data: str) -> str:
        cfg = ClientConfig.model_validate(
            {"instance": {"name": name}, "paths": {"data_dir": str(tmp_path / data)}}
        )
        return embedded_identity(cfg)

    assert identity("default", "a") == identity("default", "a")
    assert identity("default", "a") != identity("default", "b")  # another user's default
    assert identity("default", "a") != identity("second", "a")
