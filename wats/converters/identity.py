"""Report identities derived from what produced them (DESIGN invariant 3).

A derived id is a UUID5 of (converter name, SHA-256 of the source content, index of the report
within that source). Converting the same file again - after a crash, a retry, a restart - gives
the same ids, so the queue and the server see a second copy as the same report and delivery
that is at-least-once lands exactly once. It is the id of every report whose format carries
none of its own; a report that does (WSJF, WSXF, ATML) keeps the source's id
(``wats.converters.provenance``).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

__all__ = ["REPORT_ID_NAMESPACE", "content_hash", "report_id"]

REPORT_ID_NAMESPACE = uuid.UUID("241b223a-fd1c-4dff-9187-2ea90f6a1e1e")
"""Fixed namespace of wats-supervisor report ids. Never change it: ids would change with it."""

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def report_id(converter_name: str, content_sha256: str, index: int) -> str:
    """The id (lowercase UUID text) of report number ``index`` made by ``converter_name`` from
    content whose SHA-256 hex digest is ``content_sha256``."""
    if not converter_name:
        raise ValueError("converter_name must not be empty")
    digest = content_sha256.lower()
    if not _SHA256_HEX.match(digest):
        raise ValueError("content_sha256 must be a SHA-256 hex digest (64 hex digits)")
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    # Newline-separated: a name cannot contain one (config names are simple), so no two
    # different triples produce the same text.
    return str(uuid.uuid5(REPORT_ID_NAMESPACE, f"{converter_name}\n{digest}\n{index}"))


def content_hash(path: Path) -> str:
    """SHA-256 hex digest of a source: a file's bytes, or for a folder its sorted relative
    file names and their contents (temp files ``.*.tmp`` left out), so renaming the folder
    itself keeps the hash while renaming or changing a file inside changes it."""
    path = Path(path)
    if not path.is_dir():
        return _file_digest(path).hex()
    outer = hashlib.sha256(b"wats-folder-v1\n")
    files = [  # symlinks left out, as ConverterSource.files() leaves them out
        p
        for p in path.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and not (p.name.startswith(".") and p.name.endswith(".tmp"))
    ]
    for name, file in sorted((p.relative_to(path).as_posix(), p) for p in files):
        encoded = name.encode("utf-8", "surrogateescape")
        outer.update(len(encoded).to_bytes(8, "big"))
        outer.update(encoded)
        outer.update(_file_digest(file))
    return outer.hexdigest()


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()
