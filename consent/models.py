"""Versioned terms, the customer's consent to them, and every later grant or withdrawal.

See docs/consent.md. Published terms, acceptances and consent events are never changed.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from portal.environment import parse_period_code
from sessions_app.models import SupportSession


class ConsentImmutableError(Exception):
    """Published terms and given consents are evidence: they are never changed or deleted."""


def text_sha256(text: str) -> str:
    """The SHA-256 of a terms text as stored (UTF-8), in hex: what receipts and events cite."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Where a draft's text states how long recordings are kept; filled in when it is published.
RETENTION_PLACEHOLDER = "{retention}"


def describe_period(code: str, language: str) -> str:
    """A retention period such as ``24m`` in words of ``language``: "24 Monate", "24 months"."""
    amount, unit = parse_period_code(code)
    with translation.override(language):
        if unit == "years":
            return ngettext("%(n)d year", "%(n)d years", amount) % {"n": amount}
        if unit == "months":
            return ngettext("%(n)d month", "%(n)d months", amount) % {"n": amount}
        return ngettext("%(n)d day", "%(n)d days", amount) % {"n": amount}


class TermsVersionQuerySet(models.QuerySet):
    def published(self):
        return self.filter(published_at__isnull=False)

    def current(self, language: str) -> TermsVersion | None:
        """The newest published version in ``language``, else in the default language."""
        published = self.published().order_by("-version")
        return (
            published.filter(language=language).first()
            or published.filter(language=settings.LANGUAGE_CODE).first()
        )


class TermsVersion(models.Model):
    version = models.PositiveIntegerField(_("version"))
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES)
    text = models.TextField(
        _("text"), help_text=_("Plain text: the first line is the title; paragraphs are "
                               "separated by an empty line.")
    )
    sha256 = models.CharField(_("SHA-256 of the text"), max_length=64, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True, editable=False)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("published by"), null=True, blank=True,
        on_delete=models.PROTECT, related_name="+", editable=False,
    )
    # What the text promises about recordings, e.g. "24m": set from PORTAL_RECORDING_RETENTION
    # when the version is published; the recording of a customer who accepted it follows it.
    recording_retention = models.CharField(
        _("recording retention"), max_length=8, blank=True, editable=False,
    )

    objects = TermsVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-version", "language"]
        verbose_name = _("terms version")
        verbose_name_plural = _("terms versions")
        constraints = [
            models.UniqueConstraint(fields=["version", "language"], name="one_text_per_version"),
        ]
        permissions = [("publish_termsversion", _("Can publish a terms version"))]

    def __str__(self) -> str:
        return f"v{self.version} ({self.language})"

    def save(self, *args, **kwargs):
        # A draft may change; once published, the stored row is frozen (checked in the database,
        # not in this possibly stale object).
        if self.pk and TermsVersion.objects.filter(pk=self.pk, published_at__isnull=False).exists():
            raise ConsentImmutableError("a published terms version cannot be changed")
        self.sha256 = text_sha256(self.text)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.pk and TermsVersion.objects.filter(pk=self.pk, published_at__isnull=False).exists():
            raise ConsentImmutableError("a published terms version cannot be deleted")
        return super().delete(*args, **kwargs)

    def with_retention(self, code: str) -> TermsVersion:
        """An unsaved copy whose text states ``code`` (e.g. ``24m``) where it says
        ``{retention}``: what publishing stores."""
        text = self.text.replace(RETENTION_PLACEHOLDER, describe_period(code, self.language))
        copy = TermsVersion(version=self.version, language=self.language, text=text,
                            sha256=text_sha256(text), recording_retention=code)
        return copy

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    @property
    def title(self) -> str:
        return self.text.strip().splitlines()[0] if self.text.strip() else ""

    def paragraphs(self) -> list[str]:
        """The text after the title, split into paragraphs for display."""
        body = self.text.strip().split("\n", 1)[1] if "\n" in self.text.strip() else ""
        return [p.strip() for p in body.split("\n\n") if p.strip()]



class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ConsentImmutableError("consent records cannot be updated")

    def delete(self):
        raise ConsentImmutableError("consent records cannot be deleted")


class AppendOnly(models.Model):
    """Written once by an action in consent/actions.py; never changed or deleted."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ConsentImmutableError("consent records cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ConsentImmutableError("consent records cannot be deleted")


class ConsentAcceptance(AppendOnly):
    """The customer's answers to the consent form, tied to the exact terms text by its hash."""

    session = models.OneToOneField(
        SupportSession, verbose_name=_("session"), on_delete=models.PROTECT,
        related_name="consent",
    )
    terms = models.ForeignKey(
        TermsVersion, verbose_name=_("terms version"), on_delete=models.PROTECT, related_name="+"
    )
    terms_sha256 = models.CharField(_("SHA-256 of the accepted text"), max_length=64)
    language = models.CharField(_("language"), max_length=8)
    customer_name = models.CharField(_("name entered by the customer"), max_length=200)
    accepted_terms = models.BooleanField(_("accepts the terms, recording and liability"))
    it_permission = models.BooleanField(_("IT department permits it, or a private PC"))
    share_screen = models.BooleanField(_("agrees to share the screen"))
    full_control = models.BooleanField(_("allows full control"))
    accepted_at = models.DateTimeField(_("accepted at"))
    ip = models.GenericIPAddressField(_("network address"), null=True, blank=True)
    user_agent = models.CharField(_("browser"), max_length=300, blank=True)

    class Meta:
        ordering = ["-accepted_at"]
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.CheckConstraint(
                condition=Q(accepted_terms=True, it_permission=True, share_screen=True),
                name="consent_needs_terms_it_and_sharing",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session.reference} – {self.terms}"

    @property
    def control_granted_now(self) -> bool:
        """For pages below consent (the staff console reads ``session.consent``)."""
        return control_granted(self.session)


class ConsentEventKind(models.TextChoices):
    CONTROL_REQUESTED = "control_requested", _("Adviser asked for control")
    CONTROL_GRANTED = "control_granted", _("Customer granted full control")
    CONTROL_DENIED = "control_denied", _("Customer denied full control")
    CONTROL_REVOKED = "control_revoked", _("Customer revoked full control")
    CONTROL_RELEASED = "control_released", _(
        "Adviser gave control back or withdrew the request"
    )
    CONSENT_WITHDRAWN = "consent_withdrawn", _("Customer withdrew consent and ended the session")


class ConsentEvent(AppendOnly):
    """One grant, denial, revocation or withdrawal during a session, in order."""

    session = models.ForeignKey(
        SupportSession, verbose_name=_("session"), on_delete=models.PROTECT,
        related_name="consent_events",
    )
    kind = models.CharField(_("event"), max_length=24, choices=ConsentEventKind.choices)
    at = models.DateTimeField(_("at"))
    by_customer = models.BooleanField(_("by the customer"), default=True)
    ip = models.GenericIPAddressField(_("network address"), null=True, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        indexes = [models.Index(fields=["session", "at"])]

    def __str__(self) -> str:
        return f"{self.session.reference} {self.kind}"


def control_granted(session: SupportSession) -> bool:
    """Whether full control stands granted now: the latest grant, denial or revocation decides."""
    latest = (
        ConsentEvent.objects.filter(session=session)
        .exclude(kind=ConsentEventKind.CONTROL_REQUESTED)
        .order_by("-at", "-pk")
        .first()
    )
    return latest is not None and latest.kind == ConsentEventKind.CONTROL_GRANTED
