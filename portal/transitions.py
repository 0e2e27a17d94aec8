"""State machines on models: one transition table, one conditional UPDATE to move.

A model lists, for each state it can move to, the states it may come from and the time field
stamped on arrival. ``move_to`` is the only way to change the state: one ``UPDATE ... WHERE
state IN (allowed)``, so of two processes making the same move one wins, and a move the current
state forbids changes nothing. The caller (an action function) writes the audit event in the
same transaction, only when the move happened.
"""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.utils import timezone


class Transitions(models.Model):
    """Abstract base for a model with a ``state`` field and a ``TRANSITIONS`` table."""

    # target state -> (states it may be reached from, time field stamped on arrival or None)
    TRANSITIONS: ClassVar[dict[str, tuple[frozenset[str], str | None]]] = {}

    class Meta:
        abstract = True

    def move_to(self, state: str, *, at=None, where: dict | None = None, **fields) -> bool:
        """Move to ``state`` if the table allows it from the current state; False if not (or
        another process moved it first). ``where`` narrows the claim further; ``fields`` are
        written with the move."""
        allowed_from, stamp = self.TRANSITIONS[state]
        changes = {"state": state, **fields}
        if stamp:
            changes[stamp] = at or timezone.now()
        moved = type(self)._default_manager.filter(
            pk=self.pk, state__in=allowed_from, **(where or {})
        ).update(**changes)
        if moved != 1:
            return False
        for name, value in changes.items():
            setattr(self, name, value)
        return True
