"""Capabilities of the portal's roles, enrolment codes, and four-eyes requests about accounts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.roles import ADMINISTRATOR, COMPLIANCE_OFFICER, ROLE_LABELS
from portal.transitions import Transitions


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


class EnrolmentCode(models.Model):
    """A one-time code an administrator hands out so that one person can set up their app.

    Only the SHA-256 of the code is stored; the code itself is shown once, to the administrator.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrolment_codes",
        verbose_name=_("user"),
    )
    code_sha256 = models.CharField(_("code SHA-256"), max_length=64, unique=True, editable=False)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", verbose_name=_("issued by"),
    )
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("expiry recorded at"), null=True, blank=True)

    class Meta:
        verbose_name = _("enrolment code")
        verbose_name_plural = _("enrolment codes")
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.user} {self.issued_at:%Y-%m-%d %H:%M}"

    @classmethod
    def usable(cls, *, now=None) -> models.QuerySet:
        """Codes that can still start an enrolment: not used, not revoked, not expired."""
        return cls.objects.filter(
            used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now or timezone.now()
        )


class RoleChange(models.TextChoices):
    GRANT = "grant", _("grant")
    REMOVE = "remove", _("remove")


class RequestKind(models.TextChoices):
    """What a request asks for: a role change, or a sign-in step on a privileged account."""

    ROLE = "role", _("role change")
    PASSWORD = "password", _("new password")
    SECOND_FACTOR_RESET = "second_factor_reset", _("second factor reset and enrolment code")
    ENROLMENT_CODE = "enrolment_code", _("enrolment code")


class RequestState(models.TextChoices):
    PENDING = "pending", _("waiting for a second administrator")
    APPLIED = "applied", _("applied")
    REJECTED = "rejected", _("rejected")
    EXPIRED = "expired", _("expired")


# Granting these roles takes effect only once a second administrator approves (four eyes).
FOUR_EYES_ROLES = frozenset({COMPLIANCE_OFFICER, ADMINISTRATOR})


class RoleChangeRequest(Transitions):
    """An administrator's request about another staff member, decided by a second one if needed.

    ``kind`` says what: a role change (``role``, ``change``), or, for an account holding a
    privileged role, a new password, a second-factor reset or an enrolment code.
    """

    # Decided once, from pending; every move goes through move_to (portal/transitions.py).
    TRANSITIONS = {
        "applied": (frozenset({"pending"}), "decided_at"),
        "rejected": (frozenset({"pending"}), "decided_at"),
        "expired": (frozenset({"pending"}), "decided_at"),
    }

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_change_requests",
        verbose_name=_("staff member"),
    )
    kind = models.CharField(
        _("kind"), max_length=20, choices=RequestKind.choices, default=RequestKind.ROLE
    )
    role = models.CharField(
        _("role"), max_length=50, choices=list(ROLE_LABELS.items()), blank=True
    )
    change = models.CharField(_("change"), max_length=10, choices=RoleChange.choices, blank=True)
    note = models.CharField(_("reason"), max_length=300, blank=True)
    state = models.CharField(
        _("state"), max_length=10, choices=RequestState.choices, default=RequestState.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("four-eyes request")
        verbose_name_plural = _("four-eyes requests")
        default_permissions = ("view",)
        ordering = ("-requested_at",)

    def __str__(self) -> str:
        if self.kind != RequestKind.ROLE:
            return f"{self.get_kind_display()}: {self.user}"
        return f"{self.get_change_display()} {self.get_role_display()}: {self.user}"

    @property
    def needs_second_administrator(self) -> bool:
        return self.kind != RequestKind.ROLE or needs_four_eyes(role=self.role, change=self.change)


def needs_four_eyes(*, role: str, change: str) -> bool:
    """Granting Compliance officer or Administrator needs a second administrator's approval."""
    return change == RoleChange.GRANT and role in FOUR_EYES_ROLES


def is_privileged(user) -> bool:
    """Holds Compliance officer or Administrator, or is a superuser: taking over such an account
    would give its rights, so its password and second factor change only with four eyes."""
    return bool(
        user.is_superuser or user.groups.filter(name__in=FOUR_EYES_ROLES).exists()
    )
