"""The head log: the chain's head, signed, outside the database, after every appending commit.

Whoever can write to the database can delete the newest events, and the chain alone cannot show
it. So every transaction that appends audit events also appends one line to an append-only file
on another volume (``PORTAL_AUDIT_HEAD_LOG``), after it commits::

    <line> <UTC time> <seq> <hash> <previous line's SHA-256> <Ed25519 signature, base64>

The signature covers everything before it (ASCII, single spaces). Each line names the previous
line's hash, so no line can be dropped or reordered without breaking the next one, and nobody
without the signing key (``PORTAL_AUDIT_SIGNING_KEY``) can write a line. Verification
(``audit.chain.verify_trail``) requires every head to be in the chain with the same hash, so the
chain can never again be shorter than the newest signed head. See docs/audit.md.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings

security_logger = logging.getLogger("portal.security")

FIRST_PREVIOUS = "0" * 64
# The newest line is far shorter than this; reading this much from the end always finds it.
TAIL_BYTES = 1024


class HeadLogError(Exception):
    """The head log cannot be read as an unbroken series of signed lines."""


@dataclass(frozen=True)
class Head:
    line_no: int
    written_at: str
    seq: int
    hash: str
    previous: str
    signature: str
    raw: bytes  # the line without its newline

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def signed_part(self) -> bytes:
        return self.raw.rsplit(b" ", 1)[0]


def path() -> Path:
    return Path(settings.AUDIT_HEAD_LOG)


def _private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(settings.AUDIT_SIGNING_KEY)


def public_key_bytes() -> bytes:
    """The raw Ed25519 public key an auditor checks the head log with."""
    return _private_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def parse(raw: bytes, line_no: int) -> Head:
    """One line as a Head; HeadLogError names the line if it is not one."""
    parts = raw.split(b" ")
    try:
        text = [part.decode("ascii") for part in parts]
        number, written_at, seq, hash_, previous, signature = text
        head = Head(int(number), written_at, int(seq), hash_, previous, signature, raw)
    except (ValueError, UnicodeDecodeError):
        raise HeadLogError(f"line {line_no} is not a head line") from None
    if len(head.hash) != 64 or len(head.previous) != 64:
        raise HeadLogError(f"line {line_no} is not a head line")
    return head


def _last_head(log) -> Head | None:
    size = log.seek(0, os.SEEK_END)
    if size == 0:
        return None
    log.seek(max(0, size - TAIL_BYTES))
    lines = log.read().rstrip(b"\n").split(b"\n")
    return parse(lines[-1], 0)


def append(seq: int, hash_: str) -> bool:
    """Append the head (seq, hash) unless the log already holds this or a newer one."""
    log_path = path()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(log_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
    with os.fdopen(descriptor, "r+b") as log:
        # Every portal process on this host appends here; the lock keeps the lines in one chain.
        fcntl.flock(log, fcntl.LOCK_EX)
        last = _last_head(log)
        # Commits of several processes may reach here out of order: the newer head covers both.
        if last is not None and last.seq >= seq:
            return False
        number = last.line_no + 1 if last else 1
        previous = last.digest if last else FIRST_PREVIOUS
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = f"{number} {stamp} {seq} {hash_} {previous}".encode("ascii")
        signature = base64.b64encode(_private_key().sign(body))
        log.write(body + b" " + signature + b"\n")
        log.flush()
        if settings.AUDIT_HEAD_LOG_FSYNC:
            os.fsync(log.fileno())
    return True


def append_after_commit(seq: int, hash_: str) -> None:
    """The on-commit hook of every append; a failure is logged, never raised into the request."""
    try:
        append(seq, hash_)
    except Exception as error:
        # The events are committed; the next append's head line covers them again. Operators
        # must hear of it: until a head is written, the newest events can be cut off unseen.
        security_logger.exception(
            "could not append audit head #%s to the head log %s", seq, path(),
            extra={"security_event": {"event": "audit.head_log_failed", "audit_seq": seq,
                                      "details": {"path": str(path()), "error": repr(error)}}},
        )


def read(log_path: Path | None = None, *, public_key: bytes | None = None) -> Iterator[Head]:
    """Every head of the log in order, each checked: signature, numbering and link."""
    key = Ed25519PublicKey.from_public_bytes(public_key or public_key_bytes())
    previous: Head | None = None
    with (log_path or path()).open("rb") as log:
        for index, raw in enumerate(log, start=1):
            if not raw.endswith(b"\n"):
                raise HeadLogError(f"line {index} is cut off (no line end)")
            head = parse(raw[:-1], index)
            try:
                key.verify(base64.b64decode(head.signature, validate=True), head.signed_part)
            except (InvalidSignature, ValueError):
                raise HeadLogError(f"line {index} has no valid signature") from None
            if previous is None:
                if head.previous != FIRST_PREVIOUS or head.line_no != 1:
                    raise HeadLogError("the first line is not line 1 (lines cut off the start)")
            else:
                if head.line_no != previous.line_no + 1 or head.previous != previous.digest:
                    raise HeadLogError(
                        f"line {index} does not follow line {index - 1} (lines removed)"
                    )
                if head.seq <= previous.seq:
                    raise HeadLogError(f"line {index} goes back to event #{head.seq}")
            previous = head
            yield head
