"""``wats-supervisor converters list`` through the real typer app."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import PROJECT_ROOT
from wats.cli.main import app
from wats.config import CONFIG_ENV
from wats.converters import BUILTIN_CONVERTERS


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(f'[paths]\ndata_dir = "data"\nconverters_dir = "site"\n{body}', "utf-8")
    (tmp_path / "site").mkdir(exist_ok=True)
    return path


def test_list_without_config_shows_the_built_ins() -> None:
    result = CliRunner().invoke(app, ["converters", "list"])
    assert result.exit_code == 0, result.output
    assert "wsjf" in result.output and "*.xml" in result.output
    assert "No converters configured" in result.output


def test_list_lines_up_the_version_and_description_of_every_built_in() -> None:
    # csv's "*.csv, *.txt, *.tsv" is wider than any fixed pattern column would be
    result = CliRunner().invoke(app, ["converters", "list"])
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()[1 : 1 + len(BUILTIN_CONVERTERS)]
    assert [row.split()[0] for row in rows] == list(BUILTIN_CONVERTERS)
    version_columns = {re.search(r" v\d[\w.]* ", row).start() for row in rows}  # type: ignore[union-attr]
    assert len(version_columns) == 1, "\n".join(rows)


def test_list_json_shows_configured_converters_with_folders_station_and_source(
    tmp_path: Path,
) -> None:
    code = (PROJECT_ROOT / "tests" / "support" / "example_converter.py").read_text("utf-8")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "line_csv.py").write_text(code, encoding="utf-8")
    path = _config(
        tmp_path,
        '[stations.l4]\nname = "LINE-4"\n\n'
        '[[converters]]\nname = "json"\nconverter = "wsjf"\nwatch_folder = "in/json"\n\n'
        '[[converters]]\nname = "csv"\nconverter = "line_csv.py"\nwatch_folder = "in/csv"\n'
        'station = "l4"\narguments = { delimiter = ";" }\n',
    )
    result = CliRunner().invoke(app, ["converters", "list", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert [row["name"] for row in document["builtin"]] == list(BUILTIN_CONVERTERS)
    json_row, csv_row = document["configured"]
    assert json_row["source"] == "wats.converters.builtin.wsjf:WSJFConverter"
    assert json_row["file_patterns"] == ["*.json"] and json_row["kind"] == "file"
    assert json_row["watch_folder"] == str(tmp_path / "in" / "json")
    assert json_row["done_folder"] == str(tmp_path / "data" / "converters" / "json" / "done")
    assert csv_row["source"].endswith(":LineCsvConverter") and csv_row["error"] is None
    assert csv_row["file_patterns"] == ["*.csv"]
    assert csv_row["station"]["preset"] == "l4" and csv_row["station"]["name"] == "LINE-4"
    text = CliRunner().invoke(app, ["converters", "list", "--config", str(path)])
    assert text.exit_code == 0
    assert "LINE-4" in text.output and "line_csv.py" in text.output


def test_list_exits_1_naming_a_converter_that_cannot_load(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        '[[converters]]\nname = "gone"\nconverter = "missing.py"\nwatch_folder = "in"\n\n'
        '[[converters]]\nname = "typo"\nconverter = "wsjf"\nwatch_folder = "in2"\n'
        "arguments = { strict = true }\n",
    )
    result = CliRunner().invoke(app, ["converters", "list", "--config", str(path)])
    assert result.exit_code == 1
    assert "file not found" in result.output
    assert "arguments.strict: unknown argument" in result.output
