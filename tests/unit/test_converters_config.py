"""[[converters]] and hub-mode [stations.NAME] settings: validation, folders, station identity."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT
from wats.api.station import Station
from wats.config import (
    DEFAULT_WORKERS,
    ConfigError,
    ConverterConfig,
    config_to_toml,
    converter_folders,
    load_config,
    parse_config,
    site_converters_dir,
)
from wats.config.models import check_cron
from wats.converters import load_converter_class


def _conv(**overrides: Any) -> dict[str, Any]:
    return {"name": "ict", "converter": "wsjf", "watch_folder": "/in", **overrides}


def _problems(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "hub.toml")
    return str(caught.value)


def test_a_minimal_converter_takes_the_documented_defaults() -> None:
    conv = parse_config({"converters": [_conv()]}).converters[0]
    assert isinstance(conv, ConverterConfig)
    assert conv.kind is None and conv.file_patterns is None  # the converter's own
    assert (conv.post_action, conv.readiness_marker, conv.recursive) == (
        "move",
        "COMPLETE.marker",
        False,
    )
    assert (conv.alarm_threshold, conv.reject_threshold, conv.max_retries) == (0.5, 0.2, 3)
    assert conv.station == "" and conv.arguments == {}


def test_unknown_station_preset_is_an_error_naming_converter_and_known_presets() -> None:
    message = _problems(
        {"stations": {"ict-2": {"name": "ICT-2"}}, "converters": [_conv(station="ict-9")]}
    )
    assert message == (
        "hub.toml: converters: converter 'ict': station 'ict-9' is not a [stations.NAME] "
        "preset (known: 'ict-2')"
    )


def test_duplicate_converter_names_are_an_error() -> None:
    message = _problems({"converters": [_conv(), _conv(name="ICT", watch_folder="/b")]})
    assert message.startswith("hub.toml: converters: converter name 'ICT' is used twice")


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"post_action": "shred"}, '[[converters]] "ict" post_action', "'move', 'delete'"),
        ({"post_action": "archive"}, '[[converters]] "ict" archive_folder', "must be set when"),
        ({"name": "a/b"}, '[[converters]] "a/b" name', "letters, digits"),
        ({"converter": "no spaces allowed"}, '[[converters]] "ict" converter', "built-in name"),
        ({"watch_folder": ""}, '[[converters]] "ict" watch_folder', "at least 1"),
        (
            {"alarm_threshold": 1.5},
            '[[converters]] "ict" alarm_threshold',
            "less than or equal to 1",
        ),
        ({"reject_threshold": 0.6}, '[[converters]] "ict" reject_threshold', "alarm_threshold"),
        ({"cron": "* * *"}, '[[converters]] "ict" cron', "5 fields"),
        ({"cron": "0 25 * * *"}, '[[converters]] "ict" cron', "hour field: 25 is outside 0-23"),
        (
            {"cron": "0 * * * *", "schedule_interval_seconds": 60},
            '[[converters]] "ict" cron',
            "not both",
        ),
        ({"kind": "scheduled"}, '[[converters]] "ict"', "needs schedule_interval_seconds or cron"),
        ({"readiness_marker": "a/b"}, '[[converters]] "ict" readiness_marker', "file name"),
        ({"file_patterns": ["*.json", ""]}, '[[converters]] "ict" file_patterns', "empty"),
        ({"folder": "/in"}, '[[converters]] "ict" folder', "unknown setting"),
    ],
)
def test_bad_converter_settings_are_errors_naming_the_field(
    overrides: dict[str, Any], field: str, words: str
) -> None:
    message = _problems({"converters": [_conv(**overrides)]})
    assert f"hub.toml: {field}: " in message
    assert words in message


def test_missing_required_converter_settings_are_named() -> None:
    message = _problems({"converters": [{"name": "x"}]})
    assert '[[converters]] "x" converter: required setting is missing' in message
    assert '[[converters]] "x" watch_folder: required setting is missing' in message


def test_bad_station_preset_names_and_keys_are_errors() -> None:
    assert "station preset name 'a b'" in _problems({"stations": {"a b": {}}})
    assert "stations.x.machine: unknown setting" in _problems({"stations": {"x": {"machine": 1}}})


def test_cron_accepts_lists_ranges_steps_and_names() -> None:
    assert check_cron("  */15  6-22 1,15 jan-jun mon-fri ") == "*/15 6-22 1,15 jan-jun mon-fri"
    assert check_cron("0 0 * * 7") == "0 0 * * 7"
    for bad in ("60 * * * *", "* * 0 * *", "* * * 13 *", "*/0 * * * *", "5-1 * * * *", "x * * * *"):
        with pytest.raises(ValueError):
            check_cron(bad)


def test_station_for_uses_the_preset_and_fills_blanks_from_the_station_section() -> None:
    cfg = parse_config(
        {
            "station": {"name_source": "config", "name": "HUB", "location": "Plant 1"},
            "stations": {
                "ict-2": {"name": "ICT-02", "purpose": "Production"},
                "fct-1": {},
            },
            "converters": [
                _conv(name="a", station="ict-2"),
                _conv(name="b", station="fct-1"),
                _conv(name="c"),
            ],
        }
    )
    a, b, c = cfg.converters
    assert cfg.station_for(a) == Station(name="ICT-02", location="Plant 1", purpose="Production")
    assert cfg.station_for(b) == Station(name="fct-1", location="Plant 1", purpose="Development")
    assert cfg.station_for(c) == Station(name="HUB", location="Plant 1", purpose="Development")
    assert cfg.station_for() == cfg.station_for(c)
    assert cfg.converter("b") is b
    with pytest.raises(KeyError, match="known: 'a', 'b', 'c'"):
        cfg.converter("z")


def test_converter_folders_default_under_the_instance_data(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "paths": {"data_dir": str(tmp_path / "data")},
            "converters": [
                _conv(watch_folder=str(tmp_path / "in")),
                _conv(
                    name="arch",
                    watch_folder=str(tmp_path / "in2"),
                    done_folder=str(tmp_path / "done2"),
                    post_action="archive",
                    archive_folder=str(tmp_path / "archive"),
                ),
            ],
        }
    )
    plain = converter_folders(cfg, cfg.converters[0])
    base = tmp_path / "data" / "converters" / "ict"
    assert plain.watch == tmp_path / "in"
    assert (plain.pending, plain.done, plain.error, plain.state) == (
        base / "pending",
        base / "done",
        base / "error",
        base / "state",
    )
    assert plain.archive is None
    archived = converter_folders(cfg, cfg.converters[1]).ensure()
    assert archived.done == tmp_path / "done2"
    assert archived.archive == tmp_path / "archive"
    assert all(p.is_dir() for p in (archived.pending, archived.state, archived.archive))
    assert site_converters_dir(cfg) == tmp_path / "data" / "site-converters"


def test_relative_converter_folders_resolve_against_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "hub.toml"
    path.parent.mkdir()
    path.write_text(
        '[paths]\nconverters_dir = "site"\n\n[[converters]]\nname = "a"\nconverter = "x.py"\n'
        'watch_folder = "in/a"\ndone_folder = "/abs/done"\n',
        encoding="utf-8",
    )
    cfg, _ = load_config(path)
    base = path.parent.resolve()
    assert cfg.converters[0].watch_folder == str(base / "in" / "a")
    assert cfg.converters[0].done_folder == "/abs/done"
    assert cfg.converters[0].pending_folder == ""  # empty stays "use the default"
    assert site_converters_dir(cfg) == base / "site"


def test_converters_and_stations_round_trip_through_toml() -> None:
    cfg = parse_config(
        {
            "stations": {"ict-2": {"name": "ICT 2"}},
            "converters": [
                _conv(
                    station="ict-2",
                    kind="folder",
                    min_file_count=3,
                    arguments={"delimiter": ";", "nested": {"a": [1, 2]}},
                )
            ],
        }
    )
    assert parse_config(tomllib.loads(config_to_toml(cfg))) == cfg


def _load_example(name: str) -> Any:
    cfg, _ = load_config(PROJECT_ROOT / "configs" / name)
    return cfg


def _is_site_file(spec: str) -> bool:
    return ".py" in spec.lower()


def test_the_example_hub_config_loads_with_several_stations_and_converters() -> None:
    cfg = _load_example("hub.toml")
    assert len(cfg.stations) >= 3
    assert len(cfg.converters) >= 3
    assert {c.station for c in cfg.converters} == set(cfg.stations)  # every preset used
    assert len({cfg.station_for(c).name for c in cfg.converters}) == len(cfg.converters)
    assert {c.kind or "file" for c in cfg.converters} == {"file", "folder", "scheduled"}
    for conv in cfg.converters:
        if not _is_site_file(conv.converter):
            load_converter_class(conv.converter).parse_arguments(conv.arguments)


def test_the_example_station_config_has_a_working_converter() -> None:
    cfg = _load_example("station.toml")
    [conv] = cfg.converters
    assert load_converter_class(conv.converter).name in ("wsjf", "wsxf")
    assert cfg.station_for(conv).name == "ICT-01"


def test_pipeline_workers_are_built_in_and_watch_only_when_converters_exist() -> None:
    assert {"watcher", "converter", "uploader"} <= set(DEFAULT_WORKERS)
    assert DEFAULT_WORKERS["watcher"].role == "producer"
    assert DEFAULT_WORKERS["converter"].role == DEFAULT_WORKERS["uploader"].role == "consumer"
    idle = parse_config({})
    assert "uploader" in idle.enabled_workers()  # queued reports still go out
    assert not {"watcher", "converter"} & set(idle.enabled_workers())
    disabled = parse_config({"converters": [_conv(enabled=False)]})
    assert "watcher" not in disabled.enabled_workers()
    working = parse_config({"converters": [_conv()]})
    assert {"watcher", "converter", "uploader"} <= set(working.enabled_workers())
