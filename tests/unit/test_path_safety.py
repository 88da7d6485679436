"""Names from converters and files cannot escape their folders; symlinks are never followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wats.converters.base import ConverterSource
from wats.converters.identity import content_hash
from wats.fsutil import (
    MAX_NAME_BYTES,
    UnsafeNameError,
    atomic_write,
    check_name,
    safe_child,
    safe_name,
    shorten_name,
    temp_name_for,
    unique_destination,
)
from wats.workers.converter import error_file_for, symlink_refusal
from wats.workers.watcher import reached_through_symlink, symlink_inside

pytestmark = pytest.mark.timeout(10)

HOSTILE = [
    "../../etc/x",
    "..",
    ".",
    "/abs",
    "/etc/passwd",
    "..\\win",
    "..\\..\\Windows\\System32\\x.dll",
    "C:\\x",
    "C:x",
    "D:",
    "\\\\server\\share\\x",
    "a/b",
    "nul\x00byte.txt",
    "bell\x07.txt",
    "line\nbreak.txt",
    "",
    "   ",
    "report.json:stream",
    "CON",
    "nul.txt",
    "COM1.log",
    "trailing.",
    "trailing ",
    "x" * (MAX_NAME_BYTES + 1),
    "é" * 128,  # 256 bytes of UTF-8 in 128 characters
]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_is_refused_with_a_reason(name: str) -> None:
    with pytest.raises(UnsafeNameError) as caught:
        check_name(name)
    assert str(caught.value)


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_joined_to_a_folder_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeNameError):
        safe_child(tmp_path, name)


@pytest.mark.parametrize("name", HOSTILE)
def test_a_normalised_hostile_name_stays_one_entry_inside_the_folder(
    tmp_path: Path, name: str
) -> None:
    child = safe_child(tmp_path, name, normalise=True)
    assert child.parent == tmp_path
    assert check_name(child.name) == child.name
    atomic_write(child, b"kept")  # and it really can be created
    assert os.listdir(tmp_path) == [child.name]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/x", "x"),
        ("/abs", "abs"),
        ("..\\win", "win"),
        ("C:\\x", "x"),
        ("C:x.txt", "x.txt"),
        ("nul\x00byte.txt", "nul_byte.txt"),
        ("12:30:00.csv", "12_30_00.csv"),
        ("..", "unnamed"),
        ("", "unnamed"),
        ("nul.txt", "_nul.txt"),
        ("trailing. ", "trailing"),
        ("ok report (1).json", "ok report (1).json"),
    ],
)
def test_safe_name_keeps_the_last_component_and_replaces_what_windows_refuses(
    name: str, expected: str
) -> None:
    assert safe_name(name) == expected


@pytest.mark.parametrize(
    "name", ["report.json", "UUT 123 (2).xml", "résultat.csv", ".hidden", "a" * MAX_NAME_BYTES]
)
def test_ordinary_names_pass_unchanged(tmp_path: Path, name: str) -> None:
    assert check_name(name) == name
    assert safe_name(name) == name
    assert safe_child(tmp_path, name) == tmp_path / name


def test_a_very_long_name_is_shortened_deterministically_keeping_its_suffix() -> None:
    long_a = "a" * 400 + "-one.json"
    long_b = "a" * 400 + "-two.json"
    short_a = shorten_name(long_a)
    assert len(short_a.encode()) <= MAX_NAME_BYTES
    assert short_a.endswith(".json")
    assert shorten_name(long_a) == short_a
    assert shorten_name(long_b) != short_a


def test_shortening_never_cuts_a_character_in_half() -> None:
    short = shorten_name("é" * 300 + ".txt")
    assert len(short.encode("utf-8")) <= MAX_NAME_BYTES
    short.encode("utf-8")  # valid text


def test_an_existing_symlink_of_that_name_pointing_outside_is_refused(tmp_path: Path) -> None:
    folder, outside = tmp_path / "folder", tmp_path / "outside.txt"
    folder.mkdir()
    outside.write_text("secret")
    (folder / "innocent.txt").symlink_to(outside)
    with pytest.raises(UnsafeNameError, match="leads outside"):
        safe_child(folder, "innocent.txt")


def test_a_symlink_pointing_inside_the_folder_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("x")
    (tmp_path / "alias.txt").symlink_to(tmp_path / "real.txt")
    assert safe_child(tmp_path, "alias.txt") == tmp_path / "alias.txt"


def test_a_folder_reached_through_a_symlink_still_contains_its_children(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real", target_is_directory=True)
    assert safe_child(tmp_path / "linked", "x.json") == tmp_path / "linked" / "x.json"


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".", "", "nul\x00"])
def test_unique_destination_refuses_anything_but_one_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeNameError):
        unique_destination(tmp_path, name)


def test_unique_destination_keeps_names_legal_here_but_not_on_windows(tmp_path: Path) -> None:
    if os.name == "nt":
        pytest.skip("':' is not legal on Windows")
    assert unique_destination(tmp_path, "12:30:00.csv") == tmp_path / "12:30:00.csv"


def test_a_numbered_variant_of_a_name_at_the_limit_still_fits(tmp_path: Path) -> None:
    name = "r" * (MAX_NAME_BYTES - 5) + ".json"
    (tmp_path / name).write_text("first")
    second = unique_destination(tmp_path, name)
    assert len(second.name.encode()) <= MAX_NAME_BYTES
    assert second.name.endswith(" (1).json")
    second.write_text("second")


def test_a_file_whose_name_is_at_the_limit_can_be_written_atomically(tmp_path: Path) -> None:
    name = "n" * MAX_NAME_BYTES
    assert len(temp_name_for(name).encode()) <= MAX_NAME_BYTES
    atomic_write(tmp_path / name, b"data")
    assert (tmp_path / name).read_bytes() == b"data"


def test_the_reason_file_of_a_file_at_the_limit_can_be_created(tmp_path: Path) -> None:
    moved = tmp_path / ("f" * (MAX_NAME_BYTES - 4) + ".xml")
    reason = error_file_for(moved)
    assert reason.parent == tmp_path
    assert reason.name.endswith(".error.json")
    assert len(reason.name.encode()) <= MAX_NAME_BYTES
    atomic_write(reason, b"{}")
    assert error_file_for(tmp_path / "r.xml") == tmp_path / "r.xml.error.json"


def test_a_pending_symlink_or_a_folder_holding_one_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (tmp_path / "link.json").symlink_to(secret)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "ok.json").write_text("{}")
    assert symlink_refusal(folder) is None
    (folder / "deep").mkdir()
    (folder / "deep" / "stolen.json").symlink_to(secret)
    assert "symlink refused" in (symlink_refusal(tmp_path / "link.json") or "")
    assert "deep/stolen.json" in (symlink_refusal(folder) or "").replace(os.sep, "/")
    assert symlink_refusal(tmp_path / "secret.txt") is None


def test_watcher_helpers_see_links_without_following_them(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    watch = tmp_path / "watch"
    (watch / "run").mkdir(parents=True)
    (watch / "run" / "ext").symlink_to(outside, target_is_directory=True)
    assert symlink_inside(watch / "run") == "ext"
    assert reached_through_symlink(watch / "run" / "ext" / "file.json")
    assert not reached_through_symlink(watch / "run" / "file.json")


def test_a_folder_source_never_lists_or_hashes_files_through_links(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "ok.json").write_text("{}")
    before = content_hash(folder)
    (folder / "stolen.json").symlink_to(secret)
    (folder / "more").symlink_to(tmp_path, target_is_directory=True)
    assert [p.name for p in ConverterSource(folder).files()] == ["ok.json"]
    assert content_hash(folder) == before
