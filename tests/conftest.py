"""Shared fixtures: where the genuine sample files live.

Samples are read from ``../shared/samples`` next to the project root (or ``WATS_SAMPLES``) and never
copied into the repo. Where they are absent (a user's own clone) sample tests skip with a reason;
under CI (``CI=true``) a missing samples folder is a failure, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _samples_root() -> Path:
    override = os.environ.get("WATS_SAMPLES")
    if override:
        return Path(override)
    return PROJECT_ROOT.parent / "shared" / "samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The folder of genuine sample files; skip (or fail under CI) when it is missing."""
    root = _samples_root()
    if not root.is_dir():
        message = f"sample files not found at {root} (set WATS_SAMPLES to their folder)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return root


SAMPLE_OWNERS: dict[str, str] = {
    "wsjf": "wsjf",
    "wsxf": "wsxf",
    "atml": "atml",
    "teststand_xml": "teststand-xml",
    "openhtf": "openhtf",
}
"""The sample folders (formats) that have a built-in converter, and its name. The other folders
(GR228x, Takaya, XJTAG, SigmaQuest, SoundCheck, Klippel) hold formats with no converter yet:
tests that need a sample's owner skip them, and no converter is held to refusing them."""


def owned_sample_files(samples_dir: Path) -> list[tuple[Path, str]]:
    """Every standalone sample file of a format that has a built-in converter, with its owner."""
    return [
        (path, owner)
        for folder, owner in SAMPLE_OWNERS.items()
        for path in sorted((samples_dir / folder).iterdir())
        if path.is_file() and path.suffix != ".md"
    ]
