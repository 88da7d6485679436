"""msgpack encoding of envelopes, and the one error a bad frame raises.

Why msgpack: compact, fast, schema-less (the schema lives in pydantic), and has clients in every
language a future GUI or hub tool might use. Why reject so much on decode: frames come from other
processes — or from anything that can reach the socket — so a receiver checks size before parsing,
shape and version after, and turns every failure into one :class:`ProtocolError` that the caller
logs and drops. Nothing in a frame can crash the receiving process.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack
from pydantic import ValidationError

from wats.protocol.envelope import PROTOCOL_VERSION, Envelope

__all__ = [
    "MAX_FRAME_BYTES",
    "ProtocolError",
    "bad_fields",
    "decode",
    "encode",
    "make_envelope",
]

MAX_FRAME_BYTES = 1024 * 1024
"""Largest frame accepted (1 MiB). Bus messages are hints and status, not payloads; anything near
this size is a bug or an attack, and refusing it before parsing bounds the memory a frame costs."""


class ProtocolError(ValueError):
    """A frame that is not a valid envelope: too large, not msgpack, wrong shape, unknown version.

    ``kind`` is one of ``"oversized"``, ``"malformed"``, ``"shape"``, ``"version"``, ``"encode"`` —
    for counting and logging drops by cause. Messages never quote frame contents (they may carry
    anything, secrets included), only sizes, field names and types.
    """

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


_WIRE_FIELDS = frozenset(Envelope.model_fields)
_local = threading.local()


def _packer() -> msgpack.Packer:
    # A Packer reused per thread packs ~40 % faster than msgpack.packb, which builds one per call;
    # per thread because a Packer keeps state between calls and is not thread-safe.
    packer: msgpack.Packer | None = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = msgpack.Packer(use_bin_type=True, autoreset=True)
    return packer


def make_envelope(type: str, body: dict[str, Any], src: str, seq: int) -> Envelope:
    """A new envelope for ``body`` with a fresh id and the current time."""
    return Envelope(type=type, body=body, src=src, seq=seq)


def encode(env: Envelope, *, max_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """The envelope as one msgpack frame.

    Raises :class:`ProtocolError` (kind ``"encode"``) when the body holds a value msgpack cannot
    carry, or the frame would exceed ``max_bytes`` — better the sender learns than every receiver
    silently drops it.
    """
    try:
        frame: bytes = _packer().pack(
            {
                "v": env.v,
                "type": env.type,
                "id": env.id,
                "ts": env.ts,
                "src": env.src,
                "seq": env.seq,
                "body": env.body,
            }
        )
    except UnicodeEncodeError as exc:
        # A str that is not UTF-8: a file name decoded with surrogateescape (os.fsdecode of a
        # non-UTF-8 name). Publishing it must not kill the sender, so send it readable instead,
        # its undecodable bytes as \xNN escapes. That text names no file: a message whose
        # receiver must find the file carries its exact bytes too (file.pending's path_bytes).
        printable = _printable(env.body)
        if printable == env.body:  # not in the body: nothing we can repair
            raise ProtocolError(
                f"cannot encode {env.type!r} message: {_type_name(exc)}: {exc}", kind="encode"
            ) from exc
        return encode(env.model_copy(update={"body": printable}), max_bytes=max_bytes)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError(
            f"cannot encode {env.type!r} message: {_type_name(exc)}: {exc}", kind="encode"
        ) from exc
    if len(frame) > max_bytes:
        raise ProtocolError(
            f"{env.type!r} message is {len(frame)} bytes, over the {max_bytes}-byte frame limit",
            kind="encode",
        )
    return frame


def _printable(value: Any) -> Any:
    """``value`` with every str made encodable as UTF-8 (lone surrogates → ``\\xNN``)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            try:
                raw = value.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:  # a surrogate that is no escaped byte
                return value.encode("utf-8", "backslashreplace").decode("utf-8")
            return raw.decode("utf-8", "backslashreplace")
        return value
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def decode(frame: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> Envelope:
    """The envelope in one msgpack frame; :class:`ProtocolError` for anything else."""
    if len(frame) > max_bytes:
        raise ProtocolError(
            f"frame of {len(frame)} bytes is over the {max_bytes}-byte limit", kind="oversized"
        )
    try:
        obj = msgpack.unpackb(frame, raw=False, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types for garbage input
        raise ProtocolError(
            f"frame of {len(frame)} bytes is not msgpack ({_type_name(exc)})", kind="malformed"
        ) from exc
    if not isinstance(obj, dict):
        raise ProtocolError(
            f"frame holds a {_type_name(obj)}, expected an envelope map", kind="shape"
        )
    version = obj.get("v")
    if type(version) is not int:
        raise ProtocolError("envelope has no integer version 'v'", kind="shape")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"envelope version {version} is not supported (this side speaks {PROTOCOL_VERSION})",
            kind="version",
        )
    missing = _WIRE_FIELDS.difference(obj)
    if missing:  # on the wire every field is required; defaults are for making envelopes only
        raise ProtocolError(f"envelope lacks {', '.join(sorted(missing))}", kind="shape")
    try:
        return Envelope.model_validate(obj)
    except ValidationError as exc:
        raise ProtocolError(f"envelope has bad fields: {bad_fields(exc)}", kind="shape") from None


def bad_fields(exc: ValidationError) -> str:
    """The locations of the fields that failed validation, e.g. ``"body.pid, ts"``.

    Only names, never the values: a rejected frame may carry anything, a token included.
    """
    locations = {".".join(str(part) for part in err["loc"]) or "<root>" for err in exc.errors()}
    return ", ".join(sorted(locations))


def _type_name(value: object) -> str:
    """The class name of ``value`` (used in messages instead of the value itself)."""
    return type(value).__name__
