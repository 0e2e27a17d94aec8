"""Anchors: the head of every intact recorded verification, written outside the database.

One line per anchor, ``<UTC time> <seq> <hash>``, appended after the verification event
commits (``PORTAL_AUDIT_ANCHOR_FILE``). Verification checks every line: each anchored event must
still be in the chain with the same hash, and the anchors never go back. The signed head log
(``audit.heads``) records the head of every commit; anchors mark the heads that were verified.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings


class AnchorFileError(Exception):
    """The anchor file has a line that is not an anchor, or anchors that go back."""


@dataclass(frozen=True)
class Anchor:
    line_no: int
    seq: int
    hash: str


def path() -> Path:
    return Path(settings.AUDIT_ANCHOR_FILE)


def _parse(line: str, line_no: int) -> Anchor:
    parts = line.split()
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 64:
        raise AnchorFileError(f"line {line_no} of the anchor file is not an anchor")
    return Anchor(line_no, int(parts[1]), parts[2])


def write_anchor(seq: int, hash_: str) -> None:
    """Append an anchor, unless the file already ends with this or a newer one."""
    anchor_path = path()
    anchor_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(anchor_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
    with os.fdopen(descriptor, "r+", encoding="ascii") as anchors:
        # Two verifications committing at once must not leave their anchors out of order.
        fcntl.flock(anchors, fcntl.LOCK_EX)
        lines = anchors.read().splitlines()
        if lines and _parse(lines[-1], len(lines)).seq >= seq:
            return
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        anchors.write(f"{stamp} {seq} {hash_}\n")
        anchors.flush()
        os.fsync(anchors.fileno())


def read() -> Iterator[Anchor]:
    """Every anchor in order; AnchorFileError if a line is not one or the anchors go back."""
    previous = 0
    with path().open(encoding="ascii", errors="replace") as anchors:
        for line_no, line in enumerate(anchors, start=1):
            anchor = _parse(line, line_no)
            if anchor.seq <= previous:
                raise AnchorFileError(
                    f"line {line_no} of the anchor file goes back to event #{anchor.seq} "
                    f"after #{previous}"
                )
            previous = anchor.seq
            yield anchor


def exists() -> bool:
    return path().exists() and path().stat().st_size > 0
