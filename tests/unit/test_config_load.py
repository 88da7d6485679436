"""load_config: which file wins, readable errors, TOML and runtime-JSON round trips."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from wats.config import (
    CONFIG_ENV,
    ClientConfig,
    ConfigError,
    config_to_toml,
    dump_runtime_config,
    load_config,
    load_runtime_config,
    parse_config,
    render_default_config,
)
from wats.config.models import DEFAULT_WORKERS

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated_config_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the user's real config out of these tests."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_without_any_file_the_builtin_defaults_apply() -> None:
    cfg, source = load_config()
    assert source is None
    assert cfg == ClientConfig()


def test_default_path_file_is_used_when_present(tmp_path: Path) -> None:
    default = tmp_path / "xdg-config" / "wats-supervisor" / "config.toml"
    default.parent.mkdir(parents=True)
    _write(default, '[station]\nlocation = "Line 4"\n')
    cfg, source = load_config()
    assert source == default
    assert cfg.station.location == "Line 4"


def test_env_variable_overrides_default_and_explicit_path_overrides_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = _write(tmp_path / "env.toml", '[instance]\nname = "from-env"\n')
    explicit = _write(tmp_path / "explicit.toml", '[instance]\nname = "explicit"\n')
    monkeypatch.setenv(CONFIG_ENV, str(from_env))
    assert load_config()[0].instance.name == "from-env"
    cfg, source = load_config(explicit)
    assert (cfg.instance.name, source) == ("explicit", explicit)


def test_instance_argument_overrides_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.toml", '[instance]\nname = "a"\n')
    assert load_config(path, instance="b")[0].instance.name == "b"
    assert load_config(None, instance="c")[0].instance.name == "c"


def test_explicitly_named_missing_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: file not found"):
        load_config(missing)
    monkeypatch.setenv(CONFIG_ENV, str(missing))
    with pytest.raises(ConfigError, match="file not found"):
        load_config()


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "broken.toml", "[health]\ninterval_seconds = \n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: invalid TOML: ")
    assert "line 2" in str(info.value)


def test_invalid_field_error_names_file_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "config.toml", "[supervisor]\nheartbeat_interval_seconds = 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: supervisor.heartbeat_interval_seconds: Input should be greater than 0"
    )


def test_relative_paths_are_resolved_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = _write(
        folder / "c.toml",
        '[paths]\ndata_dir = "data"\nruntime_dir = "/abs/run"\n'
        '[logging]\nfile = "logs/s.jsonl"\n[server.embedded]\ndata_dir = "srv"\n',
    )
    cfg, _ = load_config(path)
    base = folder.resolve()
    assert cfg.paths.data_dir == str(base / "data")
    assert cfg.paths.runtime_dir == "/abs/run"
    assert cfg.logging.file == str(base / "logs" / "s.jsonl")
    assert cfg.server.embedded.data_dir == str(base / "srv")


def test_default_template_loads_to_exactly_the_defaults() -> None:
    cfg = parse_config(tomllib.loads(render_default_config()), "template")
    assert cfg == ClientConfig()


def test_default_template_mentions_every_setting() -> None:
    template = render_default_config()
    cfg = ClientConfig()
    for section in ("instance", "health", "sync", "supervisor", "logging", "paths", "station"):
        assert f"[{section}]" in template
        for key in type(getattr(cfg, section)).model_fields:
            assert f"\n{key} = " in template, f"{section}.{key} missing from the template"
    for key in ("url", "token_env", "host", "port", "data_dir", "converters", "[queue]"):
        assert key in template
    for name in DEFAULT_WORKERS:
        assert f"[workers.{name}]" in template


def test_config_to_toml_round_trips_a_non_default_config() -> None:
    cfg = parse_config(
        {
            "instance": {"name": "line-4"},
            "server": {"url": "https://acme.wats.com", "embedded": {"port": 0}},
            "station": {"name_source": "config", "name": 'ICT "7" \\ ünï\ncode', "purpose": "P"},
            "supervisor": {"heartbeat_interval_seconds": 0.2, "flap_max_restarts": 2},
            "workers": {
                "echo": {
                    "target": "wats.workers.testing:EchoWorker",
                    "role": "consumer",
                    "args": {"delay": 0.5, "tags": ["a", "b"], "nested": {"x y": True}},
                },
                "health": {"enabled": False},
            },
            "logging": {"level": "debug", "file": "/var/log/w.jsonl"},
            "stations": {"ict-2": {"name": "ICT 2", "location": "Line 2"}},
            "converters": [
                {
                    "name": "csv",
                    "converter": "site_csv.py:CsvConverter",
                    "watch_folder": "/in",
                    "file_patterns": ["*.csv"],
                    "cron": "*/5 * * * mon-fri",
                    "post_action": "archive",
                    "archive_folder": "/archive",
                    "arguments": {"delimiter": ";", "limits": {"max": 2.5}},
                    "station": "ict-2",
                }
            ],
        }
    )
    text = config_to_toml(cfg)
    assert parse_config(tomllib.loads(text)) == cfg


def test_runtime_config_dump_is_private_json_that_loads_back(tmp_path: Path) -> None:
    cfg = parse_config({"instance": {"name": "t1"}, "workers": {"sync": {"enabled": False}}})
    target = tmp_path / "run" / "config.json"
    dump_runtime_config(cfg, target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert load_runtime_config(target) == cfg
    assert [p.name for p in target.parent.iterdir()] == ["config.json"]  # no temp files left


def test_unreadable_runtime_config_is_a_config_error(tmp_path: Path) -> None:
    bad = _write(tmp_path / "config.json", "{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        load_runtime_config(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_runtime_config(tmp_path / "absent.json")


def test_example_station_config_in_the_repo_is_valid() -> None:
    cfg, _ = load_config(PROJECT_ROOT / "configs" / "station.toml")
    assert cfg.station.name_source == "config"
    assert cfg.station.resolved_name()


def test_configuration_docs_describe_every_setting() -> None:
    docs = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    cfg = ClientConfig()
    sections = {
        "instance": cfg.instance,
        "server": cfg.server,
        "server.embedded": cfg.server.embedded,
        "station": cfg.station,
        "health": cfg.health,
        "sync": cfg.sync,
        "supervisor": cfg.supervisor,
        "workers.<name>": cfg.workers["health"],
        "logging": cfg.logging,
        "paths": cfg.paths,
    }
    for title, section in sections.items():
        assert f"### `[{title}]`" in docs, f"no heading for [{title}]"
        for key in type(section).model_fields:
            if key == "embedded":
                continue
            assert f"| `{key}` |" in docs, f"{title}.{key} is not documented"
    for reserved in ("converters", "[queue]", "[credentials]", CONFIG_ENV):
        assert reserved in docs
