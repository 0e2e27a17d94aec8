"""Writing audit events: the one function every feature calls, in the transaction of its change."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from audit import heads, security_log
from audit.event_types import ActorType
from audit.models import GENESIS_HASH, AuditEvent
from audit.security_events import SECURITY_EVENT_LEVELS

# Any constant will do; it names the one PostgreSQL advisory lock that serializes appends.
APPEND_LOCK_ID = 0x46574155  # "FWAU"


@dataclass(frozen=True)
class Actor:
    """Who did something: a staff user, the customer, the system, or someone not signed in."""

    kind: str
    label: str
    role: str = ""
    user_id: int | None = None

    @classmethod
    def staff(cls, user: AbstractBaseUser) -> Actor:
        return cls(ActorType.USER, user.get_username(), role_names(user), user.pk)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(ActorType.SYSTEM, label)

    @classmethod
    def customer(cls, label: str = "customer") -> Actor:
        return cls(ActorType.CUSTOMER, label[:150])

    @classmethod
    def anonymous(cls, label: str = "") -> Actor:
        return cls(ActorType.ANONYMOUS, label[:150])


def role_names(user: AbstractBaseUser) -> str:
    """The user's roles (groups) as one readable string, e.g. "Compliance officer"."""
    names = sorted(user.groups.values_list("name", flat=True))
    if getattr(user, "is_superuser", False):
        names.append("superuser")
    return ", ".join(names)


def _normalised(details: dict | None) -> dict:
    # Round-trip through JSON so that the hash covers exactly what the database gives back.
    return json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder))


def _lock_chain() -> None:
    # On SQLite every transaction starts IMMEDIATE (see settings), which already serializes.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK_ID])


def record(
    *,
    event_type: str,
    actor: Actor,
    ip: str | None = None,
    session_ref: str = "",
    details: dict | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction."""
    with transaction.atomic():
        _lock_chain()
        last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
        event = AuditEvent(
            seq=(last["seq"] + 1) if last else 1,
            prev_hash=last["hash"] if last else GENESIS_HASH,
            created_at=timezone.now(),
            actor_type=actor.kind,
            actor_id=actor.user_id,
            actor_label=actor.label,
            actor_role=actor.role,
            client_ip=ip,
            event_type=str(event_type),
            session_ref=session_ref,
            details=_normalised(details),
        )
        event.hash = event.compute_hash()
        event.save(force_insert=True)
        # Once committed, the new head goes to the signed head log outside the database, and a
        # security event to the operators' log; neither for a transaction that rolls back.
        transaction.on_commit(lambda: heads.append_after_commit(event.seq, event.hash))
        level = SECURITY_EVENT_LEVELS.get(event.event_type)
        if level is not None:
            transaction.on_commit(lambda: security_log.emit(event, level))
    return event
