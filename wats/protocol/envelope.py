"""The envelope every bus message travels in.

Why one envelope: any process on the bus (supervisor, workers, the CLI, a future GUI) can route,
log, order and de-duplicate a message without knowing its type. Only the ``body`` depends on the
``type``; ``wats.protocol.messages`` holds the body schemas.

- ``v`` is the protocol version. A receiver drops a frame whose version it does not speak, so a
  change to the envelope itself bumps :data:`PROTOCOL_VERSION`; adding a message type does not.
- ``id`` is unique per message (uuid4 hex); a control reply names the request's id.
- ``seq`` lets a subscriber see lost messages. It counts per publisher *and per type*, starting at
  1, so a subscriber that filters by topic prefix still sees an unbroken sequence for each type it
  receives. ``0`` marks a message outside any published stream (control requests and replies).
"""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PROTOCOL_VERSION", "Envelope", "new_message_id"]

PROTOCOL_VERSION = 1


def new_message_id() -> str:
    """A fresh message id: a random (version 4) UUID as 32 hex digits.

    Same value space as ``uuid.uuid4().hex``, built straight from ``os.urandom`` because making a
    ``UUID`` object costs more than the rest of an envelope (this runs for every bus message).
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


class Envelope(BaseModel):
    """One bus message: routing and ordering fields around a type-specific ``body``.

    Validation is strict (no string-to-number coercion) because frames come from other processes
    and a malformed one must be rejected, not silently repaired. Unknown extra fields are ignored so
    a later minor addition to the envelope does not make older receivers drop every message.
    """

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    v: int = PROTOCOL_VERSION
    type: str = Field(min_length=1)
    id: str = Field(default_factory=new_message_id, min_length=1)
    ts: float = Field(default_factory=time.time)
    src: str = Field(min_length=1)
    seq: int = Field(default=0, ge=0)
    body: dict[str, Any] = Field(default_factory=dict)
