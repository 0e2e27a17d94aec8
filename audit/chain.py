"""Verifying the audit trail: every link and hash of the chain, and nothing cut off the end.

``verify_chain`` walks the chain in the database. ``verify_trail`` also holds it against the
records outside the database: every anchor (``audit.anchors``) and every signed head of the head
log (``audit.heads``) must name an event that is still in the chain with the same hash.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from audit import anchors, heads
from audit.event_types import EventType
from audit.events import Actor, record
from audit.models import GENESIS_HASH, AuditEvent


@dataclass(frozen=True)
class BrokenLink:
    seq: int
    reason: str


@dataclass(frozen=True)
class Verification:
    checked: int
    head_seq: int
    head_hash: str
    broken: BrokenLink | None
    # What the records outside the database held: anchors, head-log lines, the newest signed head.
    anchors: int = 0
    head_lines: int = 0
    signed_head_seq: int = 0

    @property
    def intact(self) -> bool:
        return self.broken is None


@dataclass(frozen=True)
class Checkpoint:
    """An event named outside the database: it must be in the chain with this hash."""

    seq: int
    hash: str
    source: str  # "anchor" or "head"
    line_no: int

    def describe(self) -> str:
        if self.source == "anchor":
            return f"the anchored event of a past verification (anchor file line {self.line_no})"
        return f"the signed head of head-log line {self.line_no}"


def verify_chain(
    *, chunk_size: int = 2000, checkpoints: Iterable[Checkpoint] = ()
) -> Verification:
    """Walk the whole chain in order and report the first broken link.

    ``checkpoints`` (ordered by seq) are events named outside the database; each must be in the
    chain with the same hash, so none may be cut off the end or replaced.
    """
    pending = iter(checkpoints)
    checkpoint = next(pending, None)
    previous_hash, expected_seq, checked = GENESIS_HASH, 1, 0

    def broken(seq: int, reason: str) -> Verification:
        return Verification(checked, expected_seq - 1, previous_hash, BrokenLink(seq, reason))

    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=chunk_size):
        if event.seq != expected_seq:
            return broken(expected_seq, f"events {expected_seq} to {event.seq - 1} are missing")
        if event.prev_hash != previous_hash:
            return broken(event.seq, "its previous-hash does not match the event before it")
        if event.compute_hash() != event.hash:
            return broken(event.seq, "its content does not match its hash (altered)")
        while checkpoint is not None and checkpoint.seq <= event.seq:
            if checkpoint.seq == event.seq and checkpoint.hash != event.hash:
                return broken(event.seq, f"it differs from {checkpoint.describe()} (replaced)")
            checkpoint = next(pending, None)
        previous_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1

    if checkpoint is not None:
        last = checkpoint
        for last in pending:  # noqa: B007 - the newest one names how far the cut went
            pass
        return broken(
            checked + 1,
            f"events {checked + 1} to {last.seq} are gone (cut off the end): "
            f"{last.describe()} names event #{last.seq}",
        )
    return Verification(checked, checked, previous_hash, None)


def verify_trail(
    *, chunk_size: int = 2000, head_log: Path | None = None, public_key: bytes | None = None
) -> Verification:
    """Verify the chain, every anchor and every line of the signed head log.

    ``head_log`` is another copy to check (e.g. put together from the write-once store), and
    ``public_key`` the raw Ed25519 key to check its signatures with, instead of the configured.
    """
    log_path = head_log or heads.path()
    has_events = AuditEvent.objects.exists()

    def outside_broken(reason: str) -> Verification:
        head = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
        seq = head["seq"] if head else 0
        return Verification(0, seq, head["hash"] if head else GENESIS_HASH,
                            BrokenLink(seq, reason))

    # The anchor file exists once a verification was recorded intact (each one writes it).
    verified = AuditEvent.objects.filter(event_type=EventType.AUDIT_VERIFIED).exists()
    if verified and not anchors.exists():
        return outside_broken(
            f"the anchor file {anchors.path()} is missing or empty, but the chain holds "
            "intact verifications, each of which wrote an anchor"
        )
    if has_events and not (log_path.exists() and log_path.stat().st_size > 0):
        return outside_broken(
            f"the head log {log_path} is missing or empty, but the chain holds events"
        )
    try:
        anchor_points = [
            Checkpoint(a.seq, a.hash, "anchor", a.line_no) for a in anchors.read()
        ] if anchors.exists() else []
    except anchors.AnchorFileError as error:
        return outside_broken(str(error))

    counts = {"lines": 0, "newest": 0}

    def head_points():
        if not has_events and not log_path.exists():
            return
        for head in heads.read(log_path, public_key=public_key):
            counts["lines"] += 1
            counts["newest"] = head.seq
            yield Checkpoint(head.seq, head.hash, "head", head.line_no)

    try:
        result = verify_chain(
            chunk_size=chunk_size,
            checkpoints=heapq.merge(anchor_points, head_points(), key=lambda c: c.seq),
        )
    except heads.HeadLogError as error:
        return outside_broken(f"the head log {log_path} is broken: {error}")
    return Verification(result.checked, result.head_seq, result.head_hash, result.broken,
                        anchors=len(anchor_points), head_lines=counts["lines"],
                        signed_head_seq=counts["newest"])


@transaction.atomic
def record_verification(result: Verification, *, actor: Actor) -> AuditEvent:
    """Append the outcome of a verification to the chain itself."""
    if result.intact:
        event = record(
            event_type=EventType.AUDIT_VERIFIED,
            actor=actor,
            details={
                "checked": result.checked,
                "head_seq": result.head_seq,
                "head_hash": result.head_hash,
            },
        )
        # Anchor the verification event itself, once it is committed.
        transaction.on_commit(lambda: anchors.write_anchor(event.seq, event.hash))
        return event
    return record(
        event_type=EventType.AUDIT_BROKEN,
        actor=actor,
        details={
            "checked": result.checked,
            "broken_seq": result.broken.seq,
            "reason": result.broken.reason,
        },
    )


def last_verification() -> AuditEvent | None:
    """The newest recorded verification outcome, intact or not."""
    return (
        AuditEvent.objects.filter(
            event_type__in=[EventType.AUDIT_VERIFIED, EventType.AUDIT_BROKEN]
        )
        .order_by("-seq")
        .first()
    )
