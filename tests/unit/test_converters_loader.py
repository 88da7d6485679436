"""Loading converters from built-in names, import paths and a site's own files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from wats.converters import (
    BUILTIN_CONVERTERS,
    ConverterBase,
    ConverterLoadError,
    builtin_converters,
    load_converter_class,
)
from wats.converters.builtin import WSJFConverter, WSXFConverter
from wats.converters.loader import site_module_name

SITE_CONVERTER = """
import csv
import statistics
from dataclasses import dataclass

from site_helpers import HELPER_VALUE
from wats.converters import ConverterBase, ConverterResult


@dataclass
class Row:
    value: float


class SiteConverter(ConverterBase):
    name = "site"
    file_patterns = ("*.csv",)

    def convert(self, source, context):
        return ConverterResult.fail(f"{HELPER_VALUE} {statistics.mean([1, 3])} {csv.QUOTE_ALL}")
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_built_in_short_names_load_the_built_in_converters() -> None:
    assert load_converter_class("wsjf") is WSJFConverter
    assert load_converter_class("WSXF") is WSXFConverter
    loaded = builtin_converters()
    assert loaded["wsjf"] is WSJFConverter and loaded["wsxf"] is WSXFConverter
    # every short name is the converter's own name (it is part of report ids)
    assert {name: cls.name for name, cls in loaded.items()} == {n: n for n in loaded}


def test_an_import_path_loads_the_named_class() -> None:
    loaded = load_converter_class("wats.converters.builtin.wsxf:WSXFConverter")
    assert loaded is WSXFConverter
    example = load_converter_class("tests.support.example_converter:LineCsvConverter")
    assert example.name == "line-csv"


def test_a_site_file_with_imports_loads_like_a_module(tmp_path: Path) -> None:
    _write(tmp_path / "site_helpers.py", "HELPER_VALUE = 'helped'\n")
    _write(tmp_path / "site_conv.py", SITE_CONVERTER)
    loaded = load_converter_class("site_conv.py", tmp_path)
    assert issubclass(loaded, ConverterBase)
    assert loaded.name == "site"
    assert loaded.__module__ == site_module_name(tmp_path / "site_conv.py")
    result = loaded().convert(None, None)  # type: ignore[arg-type]
    assert result.message == "helped 2 1"
    # Naming the class explicitly, or by absolute path, gives the same (cached) class.
    assert load_converter_class("site_conv.py:SiteConverter", tmp_path) is loaded
    assert load_converter_class(str(tmp_path / "site_conv.py")) is loaded


def test_two_site_files_with_the_same_name_do_not_replace_each_other(tmp_path: Path) -> None:
    for folder, name in (("a", "first"), ("b", "second")):
        (tmp_path / folder).mkdir()
        _write(
            tmp_path / folder / "converter.py",
            f"""
            from wats.converters import ConverterBase, ConverterResult

            class C(ConverterBase):
                name = "{name}"

                def convert(self, source, context):
                    return ConverterResult.fail("")
            """,
        )
    first = load_converter_class("converter.py", tmp_path / "a")
    second = load_converter_class("converter.py", tmp_path / "b")
    assert (first.name, second.name) == ("first", "second")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("no such thing", "not a built-in name"),
        ("wats_missing_pkg.mod:Conv", "no module named 'wats_missing_pkg'"),
        ("wats.converters.builtin.wsjf:Nope", "has no 'Nope'.*WSJFConverter"),
        ("wats.converters.base:ConverterResult", "not a subclass"),
        ("wats.converters.base:ConverterBase", "does not implement convert"),
    ],
)
def test_bad_import_specs_are_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(ConverterLoadError, match=message):
        load_converter_class(spec)


def test_site_file_problems_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConverterLoadError, match="needs the converters folder"):
        load_converter_class("mine.py", None)
    with pytest.raises(ConverterLoadError, match="file not found"):
        load_converter_class("mine.py", tmp_path)
    _write(tmp_path / "broken.py", "def convert(:\n")
    with pytest.raises(ConverterLoadError, match=r"syntax error in .*broken\.py line 1"):
        load_converter_class("broken.py", tmp_path)
    _write(tmp_path / "raises.py", "import wats_missing_dependency\n")
    with pytest.raises(ConverterLoadError, match=r"ModuleNotFoundError.*wats_missing_dependency"):
        load_converter_class("raises.py", tmp_path)
    _write(tmp_path / "exits.py", "import sys\nsys.exit(3)\n")
    with pytest.raises(ConverterLoadError, match="SystemExit"):
        load_converter_class("exits.py", tmp_path)
    _write(tmp_path / "empty.py", "X = 1\n")
    with pytest.raises(ConverterLoadError, match="defines no ConverterBase subclass"):
        load_converter_class("empty.py", tmp_path)


def test_a_file_with_several_converters_must_name_one(tmp_path: Path) -> None:
    body = """
    from wats.converters import ConverterBase, ConverterResult

    class One(ConverterBase):
        name = "one"

        def convert(self, source, context):
            return ConverterResult.fail("")

    class Two(One):
        name = "two"
    """
    _write(tmp_path / "several.py", body)
    with pytest.raises(ConverterLoadError, match=r"several converters .*One, Two"):
        load_converter_class("several.py", tmp_path)
    assert load_converter_class("several.py:Two", tmp_path).name == "two"


def test_a_converter_without_a_name_is_refused(tmp_path: Path) -> None:
    body = """
    from wats.converters import ConverterBase, ConverterResult

    class Nameless(ConverterBase):
        def convert(self, source, context):
            return ConverterResult.fail("")
    """
    _write(tmp_path / "nameless.py", body)
    with pytest.raises(ConverterLoadError, match="must set the class attribute name"):
        load_converter_class("nameless.py", tmp_path)


def test_configuration_docs_name_every_built_in_converter() -> None:
    # the `converter` key's row is where a user looks up what a built-in name may be
    docs = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = docs.split("### `[[converters]]`", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith("| `converter` |"))
    missing = [name for name in BUILTIN_CONVERTERS if f"`{name}`" not in row]
    assert not missing, f"docs/configuration.md `converter` row lacks {missing}"
