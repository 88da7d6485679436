"""Report ids derived from converter, content and index (DESIGN invariant 3)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from wats.converters import REPORT_ID_NAMESPACE, content_hash, report_id

SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()


def test_same_converter_content_and_index_give_the_same_id() -> None:
    assert report_id("ict", SHA_A, 0) == report_id("ict", SHA_A, 0)
    assert report_id("ict", SHA_A.upper(), 0) == report_id("ict", SHA_A, 0)


def test_ids_are_uuid5_in_the_project_namespace() -> None:
    parsed = uuid.UUID(report_id("ict", SHA_A, 0))
    assert parsed.version == 5
    assert str(parsed) == str(uuid.uuid5(REPORT_ID_NAMESPACE, f"ict\n{SHA_A}\n0"))


def test_a_different_index_converter_or_content_gives_a_different_id() -> None:
    base = report_id("ict", SHA_A, 0)
    assert report_id("ict", SHA_A, 1) != base
    assert report_id("fct", SHA_A, 0) != base
    assert report_id("ict", SHA_B, 0) != base


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        report_id("ict", "abc", 0)
    with pytest.raises(ValueError, match="index"):
        report_id("ict", SHA_A, -1)
    with pytest.raises(ValueError, match="converter_name"):
        report_id("", SHA_A, 0)


def test_file_hash_is_the_sha256_of_its_bytes(tmp_path: Path) -> None:
    file = tmp_path / "r.json"
    file.write_bytes(b"{}" * 1_000_000)
    assert content_hash(file) == hashlib.sha256(b"{}" * 1_000_000).hexdigest()


def test_same_content_under_another_file_name_hashes_the_same(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"same")
    (tmp_path / "b.json").write_bytes(b"same")
    assert content_hash(tmp_path / "a.json") == content_hash(tmp_path / "b.json")


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def test_folder_hash_depends_on_names_and_contents_not_on_the_folder_name(
    tmp_path: Path,
) -> None:
    files = {"a.csv": b"1", "sub/b.csv": b"2", "COMPLETE.marker": b""}
    first = content_hash(_folder(tmp_path / "run-1", files))
    assert content_hash(_folder(tmp_path / "run-2", files)) == first
    assert content_hash(_folder(tmp_path / "changed", {**files, "a.csv": b"9"})) != first
    renamed = {"x.csv": b"1", "sub/b.csv": b"2", "COMPLETE.marker": b""}
    assert content_hash(_folder(tmp_path / "renamed", renamed)) != first
    moved = {"a.csv": b"1", "b.csv": b"2", "COMPLETE.marker": b""}
    assert content_hash(_folder(tmp_path / "moved", moved)) != first


def test_folder_hash_ignores_temp_files(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "run", {"a.csv": b"1"})
    before = content_hash(folder)
    (folder / ".a.csv.x1y2.tmp").write_bytes(b"half written")
    assert content_hash(folder) == before
