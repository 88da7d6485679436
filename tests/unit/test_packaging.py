"""pyproject.toml installs without setuptools' deprecation box (the licence as a table)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_licence_is_an_spdx_string_and_setuptools_is_new_enough_to_read_it() -> None:
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    assert data["project"]["license"] == "MIT"  # a table is deprecated since setuptools 77
    requires = data["build-system"]["requires"]
    found = [r for r in requires if r.startswith("setuptools")]
    assert len(found) == 1
    version = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", found[0])
    assert version is not None and int(version.group(1)) >= 77, found[0]
