"""Messages about files whose names are not UTF-8 (regression: publishing one killed the worker).

``os.fsdecode`` turns a non-UTF-8 file name into a str with lone surrogates, which msgpack cannot
encode; the watcher published such a path in ``file.detected`` and died, over and over, and with
it every other file's delivery.
"""

from __future__ import annotations

import os

from wats.protocol import topics
from wats.protocol.codec import decode, encode, make_envelope
from wats.protocol.messages import FilePending, validate_body


def test_a_non_utf8_file_name_is_sent_with_its_bad_bytes_escaped() -> None:
    path = os.fsdecode(b"/watch/caf\xe9-\xff.json")
    env = make_envelope("file.detected", {"path": path, "names": [path], "size": 3}, "w", 1)
    body = decode(encode(env)).body
    assert body == {
        "path": "/watch/caf\\xe9-\\xff.json",
        "names": ["/watch/caf\\xe9-\\xff.json"],
        "size": 3,
    }


def test_a_stray_surrogate_is_escaped_too() -> None:
    env = make_envelope("x.y", {"text": "a\ud800b"}, "w", 1)
    assert decode(encode(env)).body == {"text": "a\\ud800b"}


def test_a_pending_file_with_a_non_utf8_name_travels_with_its_exact_bytes() -> None:
    # ``path`` is for reading; ``path_bytes`` finds the file (the \xNN text names none).
    raw = b"/pending/caf\xe9-latin1.json"
    body = {"converter": "c", "path": os.fsdecode(raw), "source": "s", "path_bytes": raw}
    frame = encode(make_envelope(topics.FILE_PENDING, body, "watcher", 1))
    received = validate_body(topics.FILE_PENDING, decode(frame).body)
    assert isinstance(received, FilePending)
    assert received.path == "/pending/caf\\xe9-latin1.json"
    assert os.fsdecode(received.path_bytes or b"") == os.fsdecode(raw)
