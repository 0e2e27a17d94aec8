"""Sessions and keys in the admin: read-only for review, with no key material anywhere."""

from django.contrib import admin
from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from portal.admin_site import ReadOnlyAdmin
from sessions_app.models import ClosedDay, SessionKey, SupportSession, Team


class SessionKeyInline(admin.TabularInline):
    model = SessionKey
    fields = ("state", "issued_by", "issued_at", "lifetime_minutes", "expires_at", "redeemed_at",
              "expired_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SupportSession)
class SupportSessionAdmin(ReadOnlyAdmin):
    list_display = ("reference", "customer_name", "assigned_to", "slot_start", "slot_end", "state",
                    "end_reason")
    list_filter = ("state", "end_reason", "slot_start", "team")
    search_fields = ("=reference", "customer_name", "call_note", "assigned_to__username")
    date_hierarchy = "slot_start"
    inlines = [SessionKeyInline]
    fieldsets = [
        (None, {"fields": ("reference", "customer_name", "call_note", "state", "end_reason")}),
        (_("Staff"), {"fields": ("assigned_to", "team", "scheduled_by")}),
        (_("Slot"), {"fields": ("slot_start", "slot_end")}),
        (_("Customer at admission"),
         {"fields": ("customer_entered_name", "customer_ip", "customer_user_agent",
                     "consent_receipt")}),
        (_("Recordings"), {"fields": ("recording_links",)}),
        (_("Timeline"), {"fields": ("created_at", "key_issued_at", "customer_waiting_at",
                                    "admitted_at", "ended_at", "cancelled_at", "expired_at",
                                    "refused_at")}),
    ]
    readonly_fields = ("consent_receipt", "recording_links")

    @admin.display(description=_("Recordings"))
    def recording_links(self, obj):
        """One link per customer connection's recording, for those who may review them."""
        recordings = list(obj.recordings.order_by("started_at"))
        if not recordings:
            return _("No recording.")
        return format_html_join(
            mark_safe("<br>"), '<a href="{}">{}</a> ({})',
            ((reverse("admin:recordings_recording_change", args=[r.pk]),
              f"{timezone.localtime(r.started_at):%d.%m.%Y %H:%M:%S}", r.get_state_display())
             for r in recordings),
        )

    @admin.display(description=_("Consent"))
    def consent_receipt(self, obj):
        # consent adds the reverse relation session.consent; sessions_app imports nothing of it.
        try:
            consent = obj.consent
        except ObjectDoesNotExist:
            consent = None
        if consent is None:
            return _("No consent given.")
        url = reverse("admin:consent_consentacceptance_receipt", args=[consent.pk])
        return format_html('<a href="{}">{}</a>', url, _("Open the receipt"))


@admin.register(SessionKey)
class SessionKeyAdmin(ReadOnlyAdmin):
    list_display = ("session", "state", "issued_by", "issued_at", "expires_at", "redeemed_at")
    list_filter = ("state", "issued_at")
    search_fields = ("=session__reference",)
    exclude = ("key_hmac",)  # no key material, not even its HMAC


@admin.register(ClosedDay)
class ClosedDayAdmin(admin.ModelAdmin):
    list_display = ("date", "reason")
    date_hierarchy = "date"


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name",)
    filter_horizontal = ("members",)
