"""Support sessions, their single-use keys, teams and closed days. See docs/sessions.md."""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.event_types import EventType
from audit.events import Actor, record
from portal.transitions import Transitions


class InvalidTransition(Exception):
    """A session was asked to move to a state it cannot reach from where it is."""


class Team(models.Model):
    """Support staff in a team see each other's sessions; without teams, everyone sees all."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("members"), related_name="support_teams",
        blank=True,
    )

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self) -> str:
        return self.name


class ClosedDay(models.Model):
    """A day without service besides weekends and public holidays (edited by administrators)."""

    date = models.DateField(_("date"), unique=True)
    reason = models.CharField(_("reason"), max_length=200)

    class Meta:
        ordering = ["date"]
        verbose_name = _("closed day")
        verbose_name_plural = _("closed days")

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.reason}"


class SessionState(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    KEY_ISSUED = "key_issued", _("Key issued")
    CUSTOMER_WAITING = "customer_waiting", _("Customer waiting for admission")
    ACTIVE = "active", _("Active")
    ENDED = "ended", _("Ended")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")
    REFUSED = "refused", _("Refused")


class EndReason(models.TextChoices):
    CUSTOMER_ENDED = "customer_ended", _("Customer ended the session")
    STAFF_ENDED = "staff_ended", _("Staff member ended the session")
    EXPIRED = "expired", _("Expired")
    CONNECTION_LOST = "connection_lost", _("Connection lost")
    REFUSED = "refused", _("Refused at admission")
    RECORDING_FAILED = "recording_failed", _("Recording failed")


# Where each state can be reached from, and which timestamp records the move.
TRANSITIONS: dict[str, tuple[set[str], str]] = {
    SessionState.KEY_ISSUED: ({SessionState.SCHEDULED, SessionState.KEY_ISSUED}, "key_issued_at"),
    SessionState.CUSTOMER_WAITING: ({SessionState.KEY_ISSUED}, "customer_waiting_at"),
    SessionState.ACTIVE: ({SessionState.CUSTOMER_WAITING}, "admitted_at"),
    SessionState.ENDED: ({SessionState.CUSTOMER_WAITING, SessionState.ACTIVE}, "ended_at"),
    SessionState.CANCELLED: ({SessionState.SCHEDULED, SessionState.KEY_ISSUED}, "cancelled_at"),
    SessionState.EXPIRED: (
        {SessionState.SCHEDULED, SessionState.KEY_ISSUED, SessionState.CUSTOMER_WAITING},
        "expired_at",
    ),
    SessionState.REFUSED: ({SessionState.CUSTOMER_WAITING}, "refused_at"),
}
OPEN_STATES = {
    SessionState.SCHEDULED,
    SessionState.KEY_ISSUED,
    SessionState.CUSTOMER_WAITING,
    SessionState.ACTIVE,
}


class SupportSessionQuerySet(models.QuerySet):
    def open(self):
        return self.filter(state__in=OPEN_STATES)

    def overlapping(self, start, end):
        return self.filter(slot_start__lt=end, slot_end__gt=start)

    def visible_to(self, user):
        """Sessions a support staff member may see: their own and their teams'."""
        teams = user.support_teams.all()
        return self.filter(Q(assigned_to=user) | Q(team__in=teams) | Q(team__isnull=True))


class SupportSession(models.Model):
    reference = models.CharField(_("reference"), max_length=20, unique=True)
    customer_name = models.CharField(_("customer or company"), max_length=200)
    call_note = models.CharField(
        _("phone call note or ticket"), max_length=500,
        help_text=_("Sessions only follow a phone call: note the call or the ticket number."),
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("staff member"), on_delete=models.PROTECT,
        related_name="assigned_sessions",
    )
    team = models.ForeignKey(
        Team, verbose_name=_("team"), null=True, blank=True, on_delete=models.PROTECT,
        related_name="sessions",
    )
    scheduled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("scheduled by"), on_delete=models.PROTECT,
        related_name="+",
    )
    slot_start = models.DateTimeField(_("slot start"))
    slot_end = models.DateTimeField(_("slot end"))
    state = models.CharField(
        _("state"), max_length=20, choices=SessionState.choices, default=SessionState.SCHEDULED,
        db_index=True,
    )
    created_at = models.DateTimeField(_("scheduled at"), default=timezone.now)
    key_issued_at = models.DateTimeField(_("key issued at"), null=True, blank=True)
    customer_waiting_at = models.DateTimeField(_("key redeemed at"), null=True, blank=True)
    admitted_at = models.DateTimeField(_("admitted at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)
    refused_at = models.DateTimeField(_("refused at"), null=True, blank=True)
    end_reason = models.CharField(
        _("end reason"), max_length=20, choices=EndReason.choices, blank=True
    )
    # What the customer entered when redeeming the key, for the admission step.
    customer_entered_name = models.CharField(_("name entered by the customer"), max_length=200,
                                             blank=True)
    customer_ip = models.GenericIPAddressField(_("customer's address"), null=True, blank=True)
    customer_user_agent = models.CharField(_("customer's browser"), max_length=300, blank=True)
    # The live session: the customer's one open connection (a channel name), whether the
    # customer paused sharing, and when the customer's connection was last lost.
    customer_channel = models.CharField(_("customer connection"), max_length=200, blank=True,
                                        editable=False)
    sharing_paused = models.BooleanField(_("sharing paused"), default=False)
    customer_lost_at = models.DateTimeField(_("customer connection lost at"), null=True,
                                            blank=True)

    objects = SupportSessionQuerySet.as_manager()

    class Meta:
        ordering = ["slot_start"]
        verbose_name = _("support session")
        verbose_name_plural = _("support sessions")
        constraints = [
            models.CheckConstraint(
                condition=Q(slot_end__gt=models.F("slot_start")), name="slot_ends_after_start"
            ),
        ]
        indexes = [models.Index(fields=["state", "slot_end"])]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def visible_to(self, user) -> bool:
        return SupportSession.objects.visible_to(user).filter(pk=self.pk).exists()

    def move_to(self, state: str, **fields) -> None:
        """Change state with a conditional UPDATE; refuse a move the current state forbids.

        The UPDATE is the claim: of two concurrent moves from the same state, one wins.
        """
        allowed_from, stamp = TRANSITIONS[state]
        now = fields.pop("at", None) or timezone.now()
        changes = {"state": state, stamp: now, **fields}
        moved = SupportSession.objects.filter(pk=self.pk, state__in=allowed_from).update(**changes)
        if moved != 1:
            self.refresh_from_db(fields=["state"])
            raise InvalidTransition(
                _("Session %(ref)s is “%(current)s” and cannot become “%(target)s”.")
                % {
                    "ref": self.reference,
                    "current": SessionState(self.state).label,
                    "target": SessionState(state).label,
                }
            )
        for name, value in changes.items():
            setattr(self, name, value)

    def audit(self, event_type: str, *, by: Actor, ip: str | None = None, **details):
        return record(event_type=event_type, actor=by, ip=ip, session_ref=self.reference,
                      details=details)

    @transaction.atomic
    def admit(self, *, by: Actor, ip: str | None = None) -> None:
        """The staff member, still on the phone, lets the waiting customer in."""
        self.move_to(SessionState.ACTIVE)
        self.audit(EventType.CUSTOMER_ADMITTED, by=by, ip=ip,
                   customer_entered_name=self.customer_entered_name)

    @transaction.atomic
    def refuse(self, *, by: Actor, ip: str | None = None) -> None:
        """The waiting customer is not the person on the phone: turn them away for good."""
        self.move_to(SessionState.REFUSED, end_reason=EndReason.REFUSED)
        self.audit(EventType.CUSTOMER_REFUSED, by=by, ip=ip,
                   customer_entered_name=self.customer_entered_name)


class KeyState(models.TextChoices):
    LIVE = "live", _("Live")
    REDEEMED = "redeemed", _("Redeemed")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


class SessionKey(Transitions):
    """A single-use seven-digit key, stored only as an HMAC-SHA256 (see sessions_app/keys.py)."""

    # A key is live until one move ends it; every move goes through move_to.
    TRANSITIONS = {
        "redeemed": (frozenset({"live"}), "redeemed_at"),
        "expired": (frozenset({"live"}), "expired_at"),
        "revoked": (frozenset({"live"}), "revoked_at"),
    }

    session = models.ForeignKey(
        SupportSession, verbose_name=_("session"), on_delete=models.PROTECT, related_name="keys"
    )
    key_hmac = models.CharField(_("key HMAC"), max_length=64, editable=False)
    state = models.CharField(
        _("state"), max_length=10, choices=KeyState.choices, default=KeyState.LIVE
    )
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("issued by"), on_delete=models.PROTECT,
        related_name="+",
    )
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    lifetime_minutes = models.PositiveSmallIntegerField(_("lifetime (minutes)"))
    expires_at = models.DateTimeField(_("expires at"))
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        ordering = ["-issued_at"]
        verbose_name = _("session key")
        verbose_name_plural = _("session keys")
        constraints = [
            # Unique among the keys that can still be redeemed; also the index for look-ups.
            models.UniqueConstraint(
                fields=["key_hmac"], condition=Q(state="live"), name="unique_live_key"
            ),
        ]
        indexes = [models.Index(fields=["state", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.session.reference} key {self.pk} ({self.get_state_display()})"


class LiveToken(models.Model):
    """A single-use token that lets the admitted customer's browser open the live socket."""

    session = models.ForeignKey(
        SupportSession, verbose_name=_("session"), on_delete=models.PROTECT,
        related_name="live_tokens",
    )
    token_hmac = models.CharField(_("token HMAC"), max_length=64, unique=True, editable=False)
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("live token")
        verbose_name_plural = _("live tokens")

    def __str__(self) -> str:
        return f"{self.session.reference} token {self.pk}"


class ChatMessage(models.Model):
    """One chat line of a live session, kept for the transcript."""

    class Sender(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        STAFF = "staff", _("Staff member")

    session = models.ForeignKey(
        SupportSession, verbose_name=_("session"), on_delete=models.PROTECT,
        related_name="chat_messages",
    )
    sender = models.CharField(_("from"), max_length=10, choices=Sender.choices)
    sender_label = models.CharField(_("name"), max_length=200)
    text = models.TextField(_("text"))
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)

    class Meta:
        ordering = ["sent_at", "pk"]
        verbose_name = _("chat message")
        verbose_name_plural = _("chat messages")

    def __str__(self) -> str:
        return f"{self.session.reference} {self.sender} {self.sent_at:%H:%M:%S}"
