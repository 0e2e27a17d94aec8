"""Typed readers for the environment; a bad value stops the start and names the variable."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from datetime import time
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def fail(name: str, problem: str) -> ImproperlyConfigured:
    """An error that names the variable, for a clear message at start."""
    return ImproperlyConfigured(f"Environment variable {name}: {problem}")


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise fail(name, f"expected one of 1/0, true/false, yes/no, on/off, got {value!r}")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise fail(name, f"expected a whole number, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f"at least {minimum}" + (f" and at most {maximum}" if maximum is not None else "")
        raise fail(name, f"must be {bounds}, got {number}")
    return number


def env_key(name: str, *, size: int = 32) -> bytes | None:
    """A binary key given in base64 (standard or URL-safe), exactly ``size`` bytes long."""
    value = env_str(name)
    if value is None:
        return None
    try:
        key = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise fail(name, "expected base64 (e.g. from `manage.py recording_keys`)") from None
    if len(key) != size:
        raise fail(name, f"must be {size} bytes in base64, got {len(key)} bytes")
    return key


RETENTION_UNITS = {"y": "years", "m": "months", "d": "days"}


def env_retention(name: str, default: str) -> dict[str, tuple[int, str]]:
    """Retention per class, e.g. ``standard=10y, complaint=30y`` (units y, m, d)."""
    periods: dict[str, tuple[int, str]] = {}
    for part in env_list(name, [p for p in default.split(",")]):
        label, _, period = part.partition("=")
        label, period = label.strip(), period.strip().lower()
        if not label or len(period) < 2 or period[-1] not in RETENTION_UNITS or (
            not period[:-1].isdigit() or int(period[:-1]) < 1
        ):
            raise fail(name, f"cannot read {part!r}; expected e.g. 'standard=10y' (y, m or d)")
        periods[label] = (int(period[:-1]), RETENTION_UNITS[period[-1]])
    return periods


def period_code(period: tuple[int, str]) -> str:
    """A retention period as written in PORTAL_RECORDING_RETENTION, e.g. ``(24, "months")``
    as ``24m``."""
    amount, unit = period
    letter = {word: letter for letter, word in RETENTION_UNITS.items()}[unit]
    return f"{amount}{letter}"


def parse_period_code(code: str) -> tuple[int, str]:
    """``24m`` as ``(24, "months")``; the inverse of ``period_code``."""
    return int(code[:-1]), RETENTION_UNITS[code[-1]]


SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def env_free_space(name: str, default: str) -> tuple[str, float]:
    """A minimum of free space: ``5%`` as ``("percent", 5.0)``, ``20G`` as ``("bytes", ...)``
    (units K, M, G, T in powers of 1024; none: bytes)."""
    text = env_str(name, default).lower().replace(" ", "").removesuffix("b").removesuffix("i")
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            if not 0 <= percent < 100:
                raise ValueError
            return "percent", percent
        unit = text[-1] if text and text[-1] in SIZE_UNITS else ""
        number = int(text[: len(text) - len(unit)])
        if number < 0:
            raise ValueError
        return "bytes", float(number * SIZE_UNITS[unit])
    except (ValueError, IndexError):
        raise fail(
            name, f"expected a percentage or a size, e.g. '5%' or '20G', got {text!r}"
        ) from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = env_str(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """A comma-separated list of IP addresses or CIDR networks."""
    networks = []
    for item in env_list(name):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise fail(name, f"{item!r} is not an IP address or network") from None
    return networks


def database_from_url(name: str, url: str) -> dict:
    """Django DATABASES entry for a postgres:// or postgresql:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise fail(name, f"only postgresql:// URLs are supported, got scheme {parts.scheme!r}")
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise fail(name, "the URL names no database (postgresql://user@host:5432/NAME)")
    try:
        port = parts.port
    except ValueError:
        raise fail(name, "the port is not a number") from None
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": database,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port or ""),
        # Never persistent: under ASGI every request runs in a thread of its own, and a
        # connection kept per thread is never released (docs/deployment.md). The pool in
        # portal/settings.py bounds the connections instead.
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
    }


def redis_url(name: str, url: str) -> str:
    """Check that a Redis URL is usable and return it unchanged."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"}:
        raise fail(name, f"expected redis:// or rediss://, got scheme {parts.scheme!r}")
    if not parts.hostname:
        raise fail(name, "the URL names no host (redis://host:6379/0)")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise fail(name, "the port is not a number") from None
    return url


WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def env_opening_hours(name: str, default: str) -> dict[int, tuple[time, time]]:
    """Weekly opening hours, e.g. ``mon-fri 08:00-18:00; sat 09:00-12:00`` (weekday 0 = Monday)."""
    text = env_str(name, default)
    hours: dict[int, tuple[time, time]] = {}
    for part in (p.strip() for p in text.split(";") if p.strip()):
        try:
            days, span = part.lower().split()
            first, _, last = days.partition("-")
            start, end = (time.fromisoformat(t) for t in span.split("-"))
            indices = range(WEEKDAYS.index(first), WEEKDAYS.index(last or first) + 1)
        except ValueError:
            raise fail(name, f"cannot read {part!r}; expected e.g. 'mon-fri 08:00-18:00'") from None
        if not indices or start >= end:
            raise fail(name, f"{part!r}: days must run forwards and opening before closing")
        for day in indices:
            hours[day] = (start, end)
    return hours
