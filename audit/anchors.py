"""Anchors: the chain's head written outside the database after each verification.

Whoever can rewrite the database can cut events off the end of the chain, and the chain alone
cannot show that. The anchor file (ship it to write-once storage or a log server) can: every
anchored event must still be in the chain with the same hash. One line per anchor:
``<UTC time> <seq> <hash>``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings


def _path() -> Path:
    return Path(settings.AUDIT_ANCHOR_FILE)


def write_anchor(seq: int, hash_: str) -> None:
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with path.open("a", encoding="ascii") as anchors:
        anchors.write(f"{stamp} {seq} {hash_}\n")


def latest_anchor() -> tuple[int, str] | None:
    """The newest anchored (seq, hash), or None if nothing was anchored yet."""
    path = _path()
    if not path.exists():
        return None
    latest = None
    for line in path.read_text(encoding="ascii").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and len(parts[2]) == 64:
            latest = (int(parts[1]), parts[2])
    return latest
