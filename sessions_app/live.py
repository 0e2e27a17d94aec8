"""Telling open pages about session changes, after commit, over the channel layer."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sessions_app.models import SessionState


def staff_group(user_id: int) -> str:
    return f"staff-user-{user_id}"


def team_group(team_id: int) -> str:
    return f"staff-team-{team_id}"


def session_group(session_id: int) -> str:
    """Every open connection of one session: customer, staff member and observers."""
    return f"session-{session_id}"


def session_changed(session) -> None:
    """Queue an update for the staff console (the assigned staff member and their team) and for
    every connection of the session, sent once committed."""
    groups = [staff_group(session.assigned_to_id)]
    if session.team_id:
        groups.append(team_group(session.team_id))
    data = {"session": session.reference, "state": session.state}
    messages = [(group, {"type": "console.update", "data": data}) for group in groups]
    messages.append((session_group(session.pk), {"type": "session.state", "data": data}))

    def send() -> None:
        layer = get_channel_layer()
        for group, message in messages:
            async_to_sync(layer.group_send)(group, message)

    transaction.on_commit(send)


def grace_ends_at(*, state: str, customer_channel: str,
                  customer_lost_at: datetime | None) -> datetime | None:
    """When a running session ends as "connection lost" unless its customer comes back; None
    while the customer is connected (or never was)."""
    if state != SessionState.ACTIVE or customer_channel or customer_lost_at is None:
        return None
    return customer_lost_at + timedelta(seconds=settings.LIVE_GRACE_SECONDS)


def grace_fields(ends_at: datetime | None) -> dict:
    """The grace period's deadline for a message: ``grace_ends_at`` (ISO time) and
    ``grace_seconds`` (seconds left, for a countdown that does not trust the client's clock)."""
    if ends_at is None:
        return {}
    left = (ends_at - timezone.now()).total_seconds()
    return {"grace_ends_at": ends_at.isoformat(), "grace_seconds": max(0, math.ceil(left))}


def customer_lost_message(session) -> dict:
    """``peer`` for the customer's lost connection, with the grace period's deadline."""
    return {"type": "peer", "role": "customer", "present": False,
            **grace_fields(grace_ends_at(state=session.state,
                                         customer_channel=session.customer_channel,
                                         customer_lost_at=session.customer_lost_at))}
