"""Telling open pages about session changes, after commit, over the channel layer."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


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
