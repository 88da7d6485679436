"""``wats.api`` exports load on first use, so model-only processes stay light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import wats.api


def test_importing_the_report_models_does_not_load_the_http_client() -> None:
    code = (
        "import sys, wats.api.models; "
        "print('httpx' in sys.modules, 'wats.api.client' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.split() == ["False", "False"]


def test_every_public_name_resolves_to_the_object_of_its_module() -> None:
    from wats.api.client import WatsClient
    from wats.api.models import parse_report

    assert wats.api.WatsClient is WatsClient
    assert wats.api.parse_report is parse_report
    for name in wats.api.__all__:
        assert getattr(wats.api, name) is not None


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = wats.api.Nope
