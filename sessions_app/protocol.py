"""The live-session wire protocol, version 1: every constant defined once. See docs/protocol.md.

Text frames carry JSON control messages; binary frames carry screen tiles behind a fixed
28-byte header. This module only parses and checks; the consumers decide what happens.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

# No Django here: recordings/video.py and the support program import this module as it is.

# 4401: the staff member's sign-in ended. The console socket's code is the same number
# (portal.staff_access.CLOSE_NOT_VERIFIED, below this app); tests/test_protocol_document.py
# checks that the two agree.
CLOSE_NOT_VERIFIED = 4401

PROTOCOL_VERSION = 1

# --- Close codes (4000–4999 are the application's) --------------------------------------------
CLOSE_ENDED = 4000  # the session ended normally (by either side)
CLOSE_BAD_TOKEN = 4403  # customer token unknown, used, or for a session not active
CLOSE_FORBIDDEN = 4404  # not the assigned staff member / no right to observe / no session
CLOSE_DUPLICATE = 4409  # a second customer connection while one is open
CLOSE_TOO_LARGE = 4413  # a message above MAX_MESSAGE_BYTES
CLOSE_BAD_MESSAGE = 4422  # unknown type, schema violation, bad header, tile outside screen
CLOSE_NOT_ALLOWED = 4423  # input without control, screen while paused, anything after the end
CLOSE_TOO_FAST = 4429  # above MAX_MESSAGES_PER_SECOND
CLOSE_TIMEOUT = 4408  # no hello or no heartbeat in time
CLOSE_BYTE_LIMIT = 4420  # above the byte rate, or the session's byte budget used up

# --- Binary screen messages ----------------------------------------------------------------
# version u8, kind u8, seq u32, captured_ms u64, screen_w u16, screen_h u16,
# x u16, y u16, w u16, h u16, codec u8, flags u8 — network byte order.
HEADER = struct.Struct("!BBIQHHHHHHBB")
HEADER_BYTES = HEADER.size  # 28
KIND_TILE = 1
CODEC_JPEG = 1
CODEC_WEBP = 2
CODECS = {CODEC_JPEG: "image/jpeg", CODEC_WEBP: "image/webp"}
FLAG_KEYFRAME = 0x01  # a full-screen tile: after it, the viewer's picture is complete
MAX_SCREEN_SIDE = 8192


class ProtocolError(Exception):
    """A message the protocol refuses; ``code`` is the close code, ``reason`` says why."""

    def __init__(self, code: int, reason: str):
        self.code = code
        self.reason = reason
        super().__init__(f"{code}: {reason}")


@dataclass(frozen=True)
class Tile:
    seq: int
    captured_ms: int
    screen_w: int
    screen_h: int
    x: int
    y: int
    w: int
    h: int
    codec: int
    flags: int

    @property
    def keyframe(self) -> bool:
        return bool(self.flags & FLAG_KEYFRAME)


def parse_tile(data: bytes) -> Tile:
    """Check a binary screen message's header against the protocol; return the tile."""
    if len(data) <= HEADER_BYTES:
        raise ProtocolError(CLOSE_BAD_MESSAGE, "binary message shorter than its header")
    version, kind, *fields = HEADER.unpack_from(data)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(CLOSE_BAD_MESSAGE, f"protocol version {version}")
    if kind != KIND_TILE:
        raise ProtocolError(CLOSE_BAD_MESSAGE, f"unknown binary kind {kind}")
    tile = Tile(*fields)
    if tile.codec not in CODECS:
        raise ProtocolError(CLOSE_BAD_MESSAGE, f"unknown codec {tile.codec}")
    if not (0 < tile.screen_w <= MAX_SCREEN_SIDE and 0 < tile.screen_h <= MAX_SCREEN_SIDE):
        raise ProtocolError(CLOSE_BAD_MESSAGE, "screen size out of range")
    if tile.w == 0 or tile.h == 0 or tile.x + tile.w > tile.screen_w or (
        tile.y + tile.h > tile.screen_h
    ):
        raise ProtocolError(CLOSE_BAD_MESSAGE, "tile outside the screen")
    if tile.keyframe and (tile.x, tile.y, tile.w, tile.h) != (0, 0, tile.screen_w, tile.screen_h):
        raise ProtocolError(CLOSE_BAD_MESSAGE, "a keyframe must cover the whole screen")
    return tile


def pack_tile(tile: Tile, payload: bytes) -> bytes:
    """The wire form of a tile (used by tests and the benchmark; browsers build it in JS)."""
    return HEADER.pack(
        PROTOCOL_VERSION, KIND_TILE, tile.seq, tile.captured_ms, tile.screen_w, tile.screen_h,
        tile.x, tile.y, tile.w, tile.h, tile.codec, tile.flags,
    ) + payload


# --- JSON control messages ------------------------------------------------------------------
# For each role, the message types it may send, with their fields: name -> (type, required).
# Fields not listed are refused, so a message carries nothing we did not document.
CHAT_MAX_CHARS = 2000
KEY_MAX_CHARS = 32
# Integer fields and their ranges: a tile's seq is a u32; a pointer has a handful of buttons.
INT_RANGES = {"seq": (0, 2**32 - 1), "button": (0, 31)}

CLIENT_MESSAGES: dict[str, dict[str, dict[str, tuple[type, bool]]]] = {
    "customer": {
        "hello": {"token": (str, True)},
        "heartbeat": {},
        "chat": {"text": (str, True)},
        "control_grant": {},
        "control_deny": {},
        "control_revoke": {},
        "pause": {},
        "resume": {},
        "end": {},
    },
    "staff": {
        "heartbeat": {},
        "ack": {"seq": (int, True)},
        "chat": {"text": (str, True)},
        "control_request": {},
        "control_release": {},
        "input": {
            "event": (str, True), "x": (float, False), "y": (float, False),
            "button": (int, False), "key": (str, False), "dx": (float, False),
            "dy": (float, False),
        },
        "end": {},
    },
    "observer": {
        "heartbeat": {},
        "ack": {"seq": (int, True)},
    },
}
INPUT_EVENTS = {"pointermove", "pointerdown", "pointerup", "wheel", "keydown", "keyup"}


def parse_control(text: str, *, role: str, max_bytes: int) -> dict:
    """Parse one JSON control message of ``role`` and check it against its schema.

    Only ``ProtocolError`` leaves this function, whatever ``text`` holds.
    """
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError(CLOSE_TOO_LARGE, "message too large")
    try:
        message = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        # Deep nesting: C's decoder gives up at the recursion limit; every message is flat.
        raise ProtocolError(CLOSE_BAD_MESSAGE, "nested too deeply") from None
    except ValueError:  # also NaN/Infinity, and integers longer than Python's digit limit
        raise ProtocolError(CLOSE_BAD_MESSAGE, "not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(CLOSE_BAD_MESSAGE, "not an object with a type")
    kind = message["type"]
    schema = CLIENT_MESSAGES[role].get(kind)
    if schema is None:
        raise ProtocolError(CLOSE_BAD_MESSAGE, f"unknown type {kind[:40]!r}")
    extra = set(message) - {"type"} - set(schema)
    if extra:
        raise ProtocolError(CLOSE_BAD_MESSAGE, f"unknown fields {sorted(extra)[:5]}")
    for name, (expected, required) in schema.items():
        if name not in message:
            if required:
                raise ProtocolError(CLOSE_BAD_MESSAGE, f"{kind}: missing {name}")
            continue
        message[name] = _checked(kind, name, message[name], expected)
    _check_values(kind, message)
    return message


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _checked(kind: str, name: str, value, expected: type):
    """One field's value, of the expected type and safe to store, record and forward."""
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            raise ProtocolError(CLOSE_BAD_MESSAGE, f"{kind}: {name} out of range") from None
    if not isinstance(value, expected) or isinstance(value, bool):
        raise ProtocolError(CLOSE_BAD_MESSAGE, f"{kind}: {name} must be {expected.__name__}")
    if expected is float and not math.isfinite(value):
        raise ProtocolError(CLOSE_BAD_MESSAGE, f"{kind}: {name} out of range")
    if expected is int:
        low, high = INT_RANGES[name]
        if not low <= value <= high:
            raise ProtocolError(CLOSE_BAD_MESSAGE, f"{kind}: {name} out of range")
    if expected is str:
        # A lone surrogate ("\ud800" in JSON) cannot be stored as UTF-8, nor can PostgreSQL
        # store NUL: refused here, before it reaches the database or the recording.
        if "\x00" in value or not _encodable(value):
            raise ProtocolError(CLOSE_BAD_MESSAGE,
                                f"{kind}: {name} holds characters not allowed")
    return value


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_values(kind: str, message: dict) -> None:
    if kind == "chat" and not 0 < len(message["text"].strip()) <= CHAT_MAX_CHARS:
        raise ProtocolError(CLOSE_BAD_MESSAGE, "chat: empty or too long")
    if kind == "input":
        if message["event"] not in INPUT_EVENTS:
            raise ProtocolError(CLOSE_BAD_MESSAGE, "input: unknown event")
        for axis in ("x", "y"):
            if axis in message and not 0.0 <= message[axis] <= 1.0:
                raise ProtocolError(CLOSE_BAD_MESSAGE, "input: position outside the screen")
        if len(message.get("key", "")) > KEY_MAX_CHARS:
            raise ProtocolError(CLOSE_BAD_MESSAGE, "input: key too long")
