"""Verifying the hash chain: every link, every hash, and nothing cut off the end."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from audit.anchors import latest_anchor, write_anchor
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

    @property
    def intact(self) -> bool:
        return self.broken is None


def verify_chain(*, chunk_size: int = 2000) -> Verification:
    """Walk the whole chain in order and report the first broken link."""
    anchor = latest_anchor()
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
        if anchor and event.seq == anchor[0] and event.hash != anchor[1]:
            return broken(event.seq, "it differs from the anchored event of a past verification")
        previous_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1

    if anchor and anchor[0] > checked:
        return broken(
            checked + 1,
            f"events {checked + 1} to {anchor[0]} were anchored by an earlier verification "
            "and are gone (cut off the end)",
        )
    return Verification(checked, checked, previous_hash, None)


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
        transaction.on_commit(lambda: write_anchor(event.seq, event.hash))
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
