"""Telling open pages about session changes, after commit, over the channel layer."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def staff_group(user_id: int) -> str:
    return f"staff-user-{user_id}"


def team_group(team_id: int) -> str:
    return f"staff-team-{team_id}"


def session_changed(session) -> None:
    """Queue an update for the assigned staff member and their team, sent once committed."""
    groups = [staff_group(session.assigned_to_id)]
    if session.team_id:
        groups.append(team_group(session.team_id))
    message = {
        "type": "console.update",
        "data": {"session": session.reference, "state": session.state},
    }

    def send() -> None:
        layer = get_channel_layer()
        for group in groups:
            async_to_sync(layer.group_send)(group, message)

    transaction.on_commit(send)
