"""Seven-digit session keys: drawn uniformly with ``secrets``, stored only as HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from django.conf import settings

KEY_DIGITS = 7
KEY_SPACE = 10**KEY_DIGITS


def new_key() -> str:
    """A key uniform over 0000000–9999999."""
    return f"{secrets.randbelow(KEY_SPACE):0{KEY_DIGITS}d}"


def key_hmac(key: str) -> str:
    """What the database stores and looks up instead of the key."""
    secret = settings.SESSION_KEY_SECRET.encode()
    return hmac.new(secret, key.encode("ascii"), hashlib.sha256).hexdigest()


def grouped(key: str) -> str:
    """The key as read out on the phone: ``123 4567``."""
    return f"{key[:3]} {key[3:]}"


# As read out on the phone: seven digits, or three and four with one space or dash between.
_TYPED_KEY = re.compile(r"([0-9]{3})[ \-]?([0-9]{4})", re.ASCII)


def normalised(typed: str) -> str | None:
    """The seven digits of a key as typed ("1234567", "123 4567", "123-4567"), or None."""
    match = _TYPED_KEY.fullmatch((typed or "").strip())
    return match.group(1) + match.group(2) if match else None


TOKEN_BYTES = 32


def new_token() -> str:
    """A single-use live-connection token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_token(value: str) -> bool:
    return isinstance(value, str) and 32 <= len(value) <= 64 and value.isascii()
