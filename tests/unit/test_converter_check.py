"""Config mistakes only the converter classes can tell, refused before any file is waiting:
a misspelt built-in, arguments a converter does not take, two converters after the same files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from wats.cli.main import app
from wats.config import ConfigError, parse_config
from wats.converters.check import converter_problems


@pytest.fixture(autouse=True)
def _xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def _conv(name: str, converter: str, folder: Path, **more: Any) -> dict[str, Any]:
    return {"name": name, "converter": converter, "watch_folder": str(folder), **more}


def _problems(*converters: dict[str, Any], load_site: bool = False) -> list[str]:
    cfg = parse_config({"converters": list(converters)})
    return [str(p) for p in converter_problems(cfg, load_site=load_site)]


def test_a_misspelt_built_in_is_refused_by_the_config_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"converters": [_conv("a", "wsjff", tmp_path)]})
    text = str(caught.value)
    assert '[[converters]] "a" converter' in text and "did you mean 'wsjf'?" in text


def test_arguments_a_built_in_does_not_take_are_named_with_a_suggestion(tmp_path: Path) -> None:
    found = _problems(_conv("a", "csv", tmp_path, arguments={"delimitr": ";"}))
    assert len(found) == 1
    assert found[0].startswith('[[converters]] "a" arguments: ')
    assert "arguments.delimitr: unknown argument (did you mean 'delimiter'?)" in found[0]
    assert _problems(_conv("a", "csv", tmp_path, arguments={"delimiter": ";"})) == []


def test_two_converters_after_the_same_files_in_one_folder_are_refused(tmp_path: Path) -> None:
    found = _problems(_conv("json", "wsjf", tmp_path), _conv("htf", "openhtf", tmp_path))
    assert len(found) == 1
    assert found[0].startswith("[[converters]] \"htf\" file_patterns: converter 'htf' watches")
    assert "'*.json' and '*.json'" in found[0]
    # a narrower pattern inside a wider one overlaps too; case does not matter to the watcher
    wide = _conv("all", "wsjf", tmp_path, file_patterns=["*"])
    narrow = _conv("some", "wsjf", tmp_path, file_patterns=["LINE2_*.JSON"])
    assert len(_problems(wide, narrow)) == 1
    assert len(_problems(_conv("x", "wsjf", tmp_path, file_patterns=["a_*.json"]), narrow)) == 0


def test_distinct_patterns_folders_and_kinds_may_share(tmp_path: Path) -> None:
    assert (
        _problems(
            _conv("json", "wsjf", tmp_path, file_patterns=["*.wsjf.json"]),
            _conv("htf", "openhtf", tmp_path, file_patterns=["*.htf.json"]),
            _conv("other", "wsjf", tmp_path / "elsewhere"),
            _conv("runs", "wsjf", tmp_path, kind="folder"),
            _conv("off", "openhtf", tmp_path, enabled=False),
        )
        == []
    )


def test_a_recursive_watch_meets_the_folders_below_it(tmp_path: Path) -> None:
    parent = _conv("all", "wsjf", tmp_path, recursive=True)
    child = _conv("line2", "wsjf", tmp_path / "line2")
    assert len(_problems(parent, child)) == 1
    assert _problems(_conv("all", "wsjf", tmp_path), child) == []


def test_site_converters_are_loaded_only_when_asked(tmp_path: Path) -> None:
    missing = _conv("site", "no_such_site_module.sub:Conv", tmp_path)
    assert _problems(missing) == []  # the supervisor at start runs no site code
    found = _problems(missing, load_site=True)
    assert len(found) == 1 and found[0].startswith('[[converters]] "site" converter: ')


def test_config_validate_and_start_exit_2_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[converters]]\nname = "a"\nconverter = "csv"\nwatch_folder = "in"\n'
        'arguments = { delimitr = ";" }\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    for command in (["config", "validate"], ["start"]):
        result = runner.invoke(app, [*command, "--config", str(config)])
        assert result.exit_code == 2, (command, result.output)
        assert '[[converters]] "a" arguments' in result.output
        assert "Traceback" not in result.output
