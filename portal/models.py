"""Capabilities of the portal's roles that belong to no single model."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Capability(models.Model):
    """Holds role permissions only; it has no table."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("run_sessions", _("Can schedule and run support sessions")),
            ("review_evidence", _("Can review audit events, consents and session reports")),
            ("watch_recordings", _("Can watch and export session recordings")),
            ("administer_portal", _("Can administer users, terms and settings")),
        ]

    def __str__(self) -> str:
        return "capability"
