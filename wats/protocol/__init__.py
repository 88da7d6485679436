"""The bus: message envelope, body schemas, msgpack codec, topics, endpoints and socket helpers.

Everything a process needs to talk to the others is importable from here; docs/bus.md describes
the wire format for anyone writing a client in another language.
"""

from wats.protocol import topics
from wats.protocol.addresses import (
    ENDPOINTS_FILE,
    BusAddresses,
    read_endpoints,
    write_endpoints,
)
from wats.protocol.bus import (
    ControlClient,
    ControlFailed,
    ControlTimeout,
    Publisher,
    Reply,
    Subscriber,
    bind,
    decode_control,
    error_reply,
    reply_envelope,
)
from wats.protocol.codec import MAX_FRAME_BYTES, ProtocolError, decode, encode, make_envelope
from wats.protocol.envelope import PROTOCOL_VERSION, Envelope, new_message_id
from wats.protocol.messages import (
    ERROR_CODES,
    MESSAGE_MODELS,
    ErrorCode,
    ReplyError,
    register_message,
    validate_body,
)

__all__ = [
    "ENDPOINTS_FILE",
    "ERROR_CODES",
    "MAX_FRAME_BYTES",
    "MESSAGE_MODELS",
    "PROTOCOL_VERSION",
    "BusAddresses",
    "ControlClient",
    "ControlFailed",
    "ControlTimeout",
    "Envelope",
    "ErrorCode",
    "ProtocolError",
    "Publisher",
    "Reply",
    "ReplyError",
    "Subscriber",
    "bind",
    "decode",
    "decode_control",
    "encode",
    "error_reply",
    "make_envelope",
    "new_message_id",
    "read_endpoints",
    "register_message",
    "reply_envelope",
    "topics",
    "validate_body",
    "write_endpoints",
]
