"""Seven-digit session keys: drawn uniformly with ``secrets``, stored only as HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

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


# What people put between digits when they copy a number from the phone: any whitespace
# (after NFKC, non-breaking and thin spaces are spaces) and zero-width ones, dashes of every
# kind, dots, slashes.
_SEPARATORS = re.compile(r"[\s\u200b\u2060\ufeff\-\u2010-\u2015\u2212./_]+")
_SEVEN_DIGITS = re.compile(r"[0-9]{7}", re.ASCII)


def normalised(typed: str) -> str | None:
    """The seven digits of a key however they were grouped ("117 76 23", "11-77-623",
    "117.7623"), or None for anything but exactly seven digits."""
    # NFKC turns full-width digits into ASCII ones and every kind of space into a plain one.
    digits = _SEPARATORS.sub("", unicodedata.normalize("NFKC", typed or ""))
    return digits if _SEVEN_DIGITS.fullmatch(digits) else None


TOKEN_BYTES = 32


def new_token() -> str:
    """A single-use live-connection token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_token(value: str) -> bool:
    return isinstance(value, str) and 32 <= len(value) <= 64 and value.isascii()
