"""The audit trail: append-only, hash-chained events. See docs/audit.md."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from audit.event_types import ActorType, EventType

GENESIS_HASH = "0" * 64


class AuditImmutableError(Exception):
    """Audit events are written once and never changed or deleted."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditImmutableError("audit events cannot be updated")

    def delete(self):
        raise AuditImmutableError("audit events cannot be deleted")

    def bulk_create(self, *args, **kwargs):
        raise AuditImmutableError("audit events are appended one at a time by audit.events.record")

    def bulk_update(self, *args, **kwargs):
        raise AuditImmutableError("audit events cannot be updated")


class AuditEvent(models.Model):
    seq = models.PositiveBigIntegerField(_("sequence number"), unique=True, editable=False)
    created_at = models.DateTimeField(_("time"), editable=False)
    actor_type = models.CharField(_("actor type"), max_length=16, choices=ActorType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("staff user"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=True,
    )
    actor_label = models.CharField(_("actor"), max_length=150, blank=True)
    actor_role = models.CharField(_("actor role"), max_length=200, blank=True)
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    event_type = models.CharField(_("event"), max_length=64, db_index=True)
    session_ref = models.CharField(_("session reference"), max_length=64, blank=True, db_index=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64, unique=True, editable=False)
    hash = models.CharField(_("hash"), max_length=64, unique=True, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        default_permissions = ("view",)
        permissions = [("verify_chain", _("Can verify the audit chain"))]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event_type}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditImmutableError("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditImmutableError("audit events cannot be deleted")

    @property
    def event_label(self) -> str:
        try:
            return EventType(self.event_type).label
        except ValueError:
            return self.event_type

    def canonical_content(self) -> bytes:
        """The fields the hash covers, as canonical JSON (sorted keys, no spaces, UTF-8)."""
        content = {
            "seq": self.seq,
            "created_at": self.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor_type": self.actor_type,
            "actor_id": self.actor_id,
            "actor_label": self.actor_label,
            "actor_role": self.actor_role,
            "client_ip": self.client_ip,
            "event_type": self.event_type,
            "session_ref": self.session_ref,
            "details": self.details,
        }
        return json.dumps(
            content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    def compute_hash(self) -> str:
        return hashlib.sha256(self.prev_hash.encode("ascii") + self.canonical_content()).hexdigest()
