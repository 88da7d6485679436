"""ClientConfig: documented defaults, strict keys, merged worker tables, readable validation."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError

from wats.config import ClientConfig, ConfigError, parse_config


def test_defaults_run_the_embedded_server_with_the_documented_policy() -> None:
    cfg = ClientConfig()
    assert cfg.instance.name == "default"
    assert cfg.server.url == "" and cfg.server.uses_embedded
    assert cfg.server.token_env == "WATS_TOKEN"
    assert cfg.server.effective_url() == "http://127.0.0.1:8080"
    assert cfg.health.interval_seconds == 30 and cfg.sync.interval_seconds == 300
    sup = cfg.supervisor
    assert (sup.heartbeat_interval_seconds, sup.heartbeat_misses, sup.heartbeat_grace_seconds) == (
        1.0,
        3,
        0.4,
    )
    assert (sup.backoff_first_seconds, sup.backoff_base_seconds, sup.backoff_max_seconds) == (
        0.0,
        0.1,
        30.0,
    )
    assert (sup.flap_max_restarts, sup.flap_window_seconds, sup.flap_cooldown_seconds) == (
        10,
        60.0,
        300.0,
    )
    assert list(cfg.enabled_workers()) == ["health", "sync", "server", "uploader"]


def test_server_worker_is_left_out_when_a_server_url_is_configured() -> None:
    cfg = parse_config({"server": {"url": "https://acme.wats.com/"}})
    assert cfg.server.url == "https://acme.wats.com"
    assert not cfg.server.uses_embedded
    assert list(cfg.enabled_workers()) == ["health", "sync", "uploader"]


def test_worker_tables_override_builtins_and_add_new_workers() -> None:
    cfg = parse_config(
        {
            "workers": {
                "sync": {"enabled": False},
                "crashy": {
                    "target": "wats.workers.testing:CrashingWorker",
                    "role": "producer",
                    "args": {"exit_code": 3, "after_seconds": 0.2},
                },
            }
        }
    )
    assert cfg.workers["sync"].target == "wats.workers.sync:SyncWorker"
    assert not cfg.workers["sync"].enabled
    assert list(cfg.enabled_workers()) == ["health", "server", "uploader", "crashy"]
    assert cfg.workers["crashy"].args == {"exit_code": 3, "after_seconds": 0.2}
    assert cfg.workers["crashy"].role == "producer"


def test_unknown_key_is_an_error_that_suggests_the_right_spelling() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"supervisor": {"heartbeat_intervall_seconds": 2}}, "station.toml")
    message = str(info.value)
    assert message.startswith("station.toml: supervisor.heartbeat_intervall_seconds: ")
    assert "did you mean 'heartbeat_interval_seconds'" in message


def test_invalid_value_names_file_and_dotted_field() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"supervisor": {"heartbeat_interval_seconds": 0}}, "config.toml")
    assert str(info.value) == (
        "config.toml: supervisor.heartbeat_interval_seconds: Input should be greater than 0"
    )


def test_every_problem_is_reported_on_its_own_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "health": {"interval_seconds": -1},
                "workers": {"x": {"tagret": "a:B"}},
                "logging": {"level": "loud"},
            },
            "c.toml",
        )
    lines = str(info.value).splitlines()
    assert all(line.startswith("c.toml: ") for line in lines)
    fields = {line.split(": ")[1] for line in lines}
    assert {"health.interval_seconds", "workers.x.tagret", "logging.level"} <= fields
    assert "did you mean 'target'" in str(info.value)
    # the misspelt key is the one problem: no "required setting is missing" for 'target' too
    assert "workers.x.target" not in fields


def test_a_misspelt_converter_key_is_one_problem_with_a_suggestion_naming_the_converter() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "converters": [
                    {"name": "json-results", "converter": "wsjf", "watch_foldr": "in"},
                    {"converter": "wsjf", "watch_folder": "x", "post_acton": "move"},
                ],
                "stations": {"l4": {"nmae": "LINE-4"}},
            },
            "c.toml",
        )
    assert str(info.value).splitlines() == [
        "c.toml: stations.l4.nmae: unknown setting; did you mean 'name'? "
        "(see docs/configuration.md for the valid keys)",
        "c.toml: [[converters]] \"json-results\" watch_foldr: unknown setting; did you mean "
        "'watch_folder'? (see docs/configuration.md for the valid keys)",
        "c.toml: [[converters]] #2 name: required setting is missing",
        "c.toml: [[converters]] #2 post_acton: unknown setting; did you mean 'post_action'? "
        "(see docs/configuration.md for the valid keys)",
    ]


def test_an_unknown_key_far_from_any_known_one_still_leaves_the_missing_one_named() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"converters": [{"name": "a", "converter": "wsjf", "zzz": 1}]}, "c.toml")
    text = str(info.value)
    assert '[[converters]] "a" watch_folder: required setting is missing' in text
    assert '[[converters]] "a" zzz: unknown setting (see' in text


def test_config_station_name_source_requires_a_name() -> None:
    with pytest.raises(ConfigError, match=r"station\.name: must be set"):
        parse_config({"station": {"name_source": "config"}})
    cfg = parse_config({"station": {"name_source": "config", "name": " ICT-07 "}})
    assert cfg.station.resolved_name() == "ICT-07"


def test_hostname_station_name_source_uses_this_machines_name() -> None:
    cfg = parse_config({"station": {"name": "ignored"}})
    assert cfg.station.resolved_name() == socket.gethostname()


@pytest.mark.parametrize(
    ("section", "values", "field"),
    [
        ("server", {"url": "ftp://x"}, "server.url"),
        ("server", {"token_env": "abc def"}, "server.token_env"),
        ("instance", {"name": "../escape"}, "instance.name"),
        ("supervisor", {"backoff_base_seconds": 5, "backoff_max_seconds": 1}, "backoff_max"),
        ("workers", {"w": {"target": "no_colon"}}, "workers.w.target"),
        ("workers", {"Bad Name": {"target": "a:B"}}, "workers"),
    ],
)
def test_values_that_would_break_at_runtime_are_rejected_up_front(
    section: str, values: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({section: values}, "c.toml")
    assert field in str(info.value)


def test_token_is_read_from_the_named_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = parse_config({"server": {"token_env": "MY_WATS_TOKEN"}})
    monkeypatch.delenv("MY_WATS_TOKEN", raising=False)
    assert cfg.server.token_from_env() is None
    monkeypatch.setenv("MY_WATS_TOKEN", "c2VjcmV0")
    assert cfg.server.token_from_env() == "c2VjcmV0"
    assert "c2VjcmV0" not in repr(cfg)


def test_log_level_is_case_insensitive() -> None:
    assert parse_config({"logging": {"level": "DEBUG"}}).logging.level == "debug"


def test_reserved_sections_accept_emptiness_only() -> None:
    cfg = parse_config({"converters": [], "queue": {}, "credentials": {}})
    assert cfg.converters == []
    with pytest.raises(ConfigError, match=r"credentials\.x"):
        parse_config({"credentials": {"x": 1}})


def test_orphan_timeout_not_above_the_heartbeat_interval_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        ClientConfig.model_validate(
            {"supervisor": {"heartbeat_interval_seconds": 2.0, "orphan_timeout_seconds": 2.0}}
        )
    assert "orphan_timeout_seconds" in str(caught.value)
    assert "heartbeat_interval_seconds" in str(caught.value)
