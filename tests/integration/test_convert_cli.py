"""``wats-supervisor convert``: a real sandbox, real converters, nothing uploaded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import PROJECT_ROOT
from tests.support.pipeline_harness import small_report
from wats.api.models import parse_report
from wats.cli.main import app
from wats.config import CONFIG_ENV
from wats.converters.identity import content_hash, report_id

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


def _config(tmp_path: Path, body: str = "") -> Path:
    path = tmp_path / "station.toml"
    path.write_text(
        '[station]\nname_source = "config"\nname = "BENCH-7"\n'
        'location = "Lab"\npurpose = "Debug"\n\n'
        f'[paths]\ndata_dir = "data"\nconverters_dir = "site"\n{body}',
        "utf-8",
    )
    (tmp_path / "site").mkdir(exist_ok=True)
    return path


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["convert", *args])
    return result.exit_code, result.stdout, result.stderr


def test_convert_picks_the_most_confident_converter_and_prints_what_would_be_queued(
    samples_dir: Path, tmp_path: Path
) -> None:
    sample = samples_dir / "wsxf" / "uut-wsxf-export.xml"
    code, out, err = _run(str(sample), "--config", str(_config(tmp_path)))
    assert code == 0, err
    report = parse_report(json.loads(out))
    assert "using built-in converter 'wsxf'" in err and "others:" in err
    # WSXF carries its own id and station: the pipeline keeps what the file records
    recorded = re.search(r'<Report\b[^>]*\bID="([^"]+)"', sample.read_text("utf-8"))
    assert recorded is not None
    assert str(report.id) == recorded.group(1).lower()
    assert str(report.id) != report_id("wsxf", content_hash(sample), 0)
    assert (report.machine_name, report.location, report.purpose) != ("BENCH-7", "Lab", "Debug")
    assert report.sn == "FATTest-325" and report.pn == "FATPartNo"


def test_convert_explain_says_where_the_id_and_each_station_field_came_from(
    tmp_path: Path,
) -> None:
    report = json.loads(small_report("SN-EXPLAIN"))
    report.update(machineName="ICT-07", location="", purpose="")
    path = tmp_path / "one.json"
    path.write_text(json.dumps(report), "utf-8")
    code, out, err = _run(str(path), "--explain", "--config", str(_config(tmp_path)))
    assert code == 0, err
    converted = parse_report(json.loads(out))
    assert str(converted.id) == report["id"]
    assert (converted.machine_name, converted.location, converted.purpose) == (
        "ICT-07",
        "Lab",
        "Debug",
    )
    assert f"id {report['id']} (the file's own id)" in err
    assert "station   'ICT-07' from the file" in err
    assert "location  'Lab' from the configuration ([station])" in err


def test_convert_with_an_overriding_converter_shows_the_configured_station(
    tmp_path: Path,
) -> None:
    report = json.loads(small_report("SN-OVERRIDE"))
    report["machineName"] = "ICT-07"
    path = tmp_path / "one.json"
    path.write_text(json.dumps(report), "utf-8")
    config = _config(
        tmp_path,
        '[[converters]]\nname = "fixed"\nconverter = "wsjf"\nwatch_folder = "in"\n'
        "override_file_station = true\n",
    )
    code, out, err = _run(str(path), "--converter", "fixed", "--tree", "--config", str(config))
    assert code == 0, err
    assert "station   'BENCH-7' from the configuration ([station], override_file_station)" in out


def test_convert_tree_shows_header_and_steps_with_measurements(
    samples_dir: Path, tmp_path: Path
) -> None:
    sample = samples_dir / "wsxf" / "uut-wsxf-export.xml"
    code, out, err = _run(str(sample), "--tree", "--config", str(_config(tmp_path)))
    assert code == 0, err
    assert "serial FATTest-325   part FATPartNo" in out
    assert "- [failed] SingleEQFail  (ET_NLT)" in out
    assert "V  EQ 501" in out and "limits 501..-" not in out  # one limit, not a range
    assert "misc MiscInfoString: Hello" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_convert_with_a_named_converter_that_cannot_read_the_file_says_why(
    samples_dir: Path, tmp_path: Path
) -> None:
    sample = samples_dir / "wsxf" / "uut-wsxf-export.xml"
    code, out, err = _run(str(sample), "--converter", "wsjf", "--config", str(_config(tmp_path)))
    assert code == 1
    assert out == ""
    assert "wsjf could not convert the file (rejected): not valid JSON" in err


def test_convert_of_a_file_no_converter_knows_exits_1_naming_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "noise.bin"
    garbage.write_bytes(bytes(range(256)) * 8)
    code, out, err = _run(str(garbage), "--config", str(_config(tmp_path)))
    assert code == 1 and out == ""
    assert "no converter recognises noise.bin" in err and "--converter" in err
    assert "best:" not in err and "0.00" not in err
    assert "asked: wsjf, wsxf" in err


def test_convert_with_an_unknown_converter_name_is_a_usage_error(
    samples_dir: Path, tmp_path: Path
) -> None:
    sample = samples_dir / "wsjf" / "uur_example.json"
    code, _out, err = _run(str(sample), "--converter", "nosuch", "--config", str(_config(tmp_path)))
    assert code == 2
    assert "'nosuch'" in err and "built-in name" in err


def test_convert_uses_a_configured_site_converter_with_its_arguments_and_station(
    tmp_path: Path,
) -> None:
    code_text = (PROJECT_ROOT / "tests" / "support" / "example_converter.py").read_text("utf-8")
    config = _config(
        tmp_path,
        '\n[stations.l4]\nname = "LINE-4"\nlocation = "Hall B"\npurpose = "Production"\n\n'
        '[[converters]]\nname = "line-csv"\nconverter = "line_csv.py"\n'
        'watch_folder = "in"\nstation = "l4"\narguments = { delimiter = ";" }\n',
    )
    (tmp_path / "site" / "line_csv.py").write_text(code_text, encoding="utf-8")
    result_file = tmp_path / "unit.csv"
    result_file.write_text(
        "serial;SN-77\npart;PCBA-100\nrevision;B\noperation;ICT\nVCC;3.31;3.20;3.40;V\n", "utf-8"
    )
    code, out, err = _run(str(result_file), "--config", str(config))
    assert code == 0, err
    assert "using configured converter 'line-csv'" in err
    report = parse_report(json.loads(out))
    assert (report.sn, report.rev, report.machine_name) == ("SN-77", "B", "LINE-4")
    assert str(report.id) == report_id("line-csv", content_hash(result_file), 0)
    step = report.root.steps[0]
    assert step.name == "VCC" and step.numeric_meas[0].value == pytest.approx(3.31)


@pytest.mark.parametrize(
    ("sample", "owner", "serial"),
    [
        ("atml/ATML_6.01_TS2017_MotherboardDemo.xml", "atml", "123456789"),
        ("teststand_xml/TSWithWats_TSReport.xml", "teststand-xml", "12345"),
        ("openhtf/openhtf163_measurements_FAIL.json", "openhtf", "MyDutId"),
        ("wsjf/uur_example.json", "wsjf", None),
    ],
)
def test_convert_without_converter_picks_the_owner_of_each_equipment_format(
    samples_dir: Path, tmp_path: Path, sample: str, owner: str, serial: str | None
) -> None:
    code, out, err = _run(str(samples_dir / sample), "--config", str(_config(tmp_path)))
    assert code == 0, err
    assert f"using built-in converter '{owner}'" in err
    report = parse_report(json.loads(out))
    if serial is not None:
        assert report.sn == serial


def test_convert_labels_the_result_confidence_apart_from_the_validate_one(
    samples_dir: Path, tmp_path: Path
) -> None:
    # openhtf's validate() says 0.95 and its result (no part number: a built-in default) 0.80:
    # a bare "confidence 0.80" under "validate() confidence 0.95" read as a contradiction
    sample = samples_dir / "openhtf" / "openhtf163_hello_world_PASS.json"
    code, _out, err = _run(str(sample), "--config", str(_config(tmp_path)))
    assert code == 0, err
    assert "validate() confidence 0.95" in err
    assert "convert() result confidence 0.80 (validate() said 0.95)" in err
    assert not any(line.startswith("confidence") for line in err.splitlines())
    code, _out, err = _run(
        str(sample), "--converter", "openhtf", "--config", str(_config(tmp_path))
    )
    assert code == 0, err
    assert "convert() result confidence 0.80;" in err and "validate() said" not in err


def test_convert_of_a_folder_without_a_folder_converter_says_only_those_read_folders(
    samples_dir: Path, tmp_path: Path
) -> None:
    folder = samples_dir / "wsjf"
    code, out, err = _run(str(folder), "--config", str(_config(tmp_path)))
    assert code == 1 and out == ""
    assert f"{folder} is a folder: only folder-kind converters" in err
    assert "convert its files one by one" in err and "--converter NAME" in err
    code, out, err = _run(str(folder), "--converter", "wsjf", "--config", str(_config(tmp_path)))
    assert code == 2 and out == ""
    assert "converter 'wsjf' is of kind 'file'" in err and "is a folder" in err
    usage = CliRunner().invoke(app, ["convert", "--help"], env={"COLUMNS": "200"}).output
    assert "or a run folder for a folder-kind converter" in usage


def test_convert_of_a_folder_asks_the_configured_folder_kind_converters(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        '\n[[converters]]\nname = "burnin"\nconverter = "burnin_rack.py:BurnInRackConverter"\n'
        'kind = "folder"\nwatch_folder = "in"\n',
    )
    site = PROJECT_ROOT / "configs" / "site-converters" / "burnin_rack.py"
    (tmp_path / "site" / "burnin_rack.py").write_text(site.read_text("utf-8"), "utf-8")
    run = tmp_path / "run-0042"
    run.mkdir()
    (run / "unit.txt").write_text("serial: SN-0042\npart: PSU-200\nrevision: B\n", "utf-8")
    (run / "psu.csv").write_text(
        "cycle,name,value,low,high,unit\n1,Output voltage,12.02,11.8,12.2,V\n", "utf-8"
    )
    code, out, err = _run(str(run), "--config", str(config))
    assert code == 0, err
    assert "using configured converter 'burnin'" in err
    assert parse_report(json.loads(out)).sn == "SN-0042"
