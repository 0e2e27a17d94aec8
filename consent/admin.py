"""Terms, consents and consent events in the admin.

Administrators draft and publish terms (with a preview); published versions are read-only.
Compliance officers read consents and open each receipt; every opening is audited.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from audit.event_types import EventType
from consent import actions
from consent.models import ConsentAcceptance, ConsentEvent, TermsVersion
from consent.views import receipt_context
from portal import client_ip
from portal.admin_site import ReadOnlyAdmin
from portal.request_audit import record_for_request
from portal.roles import PUBLISH_TERMS


@admin.register(TermsVersion)
class TermsVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "version", "language", "published_at", "short_hash")
    list_filter = ("language", "published_at")
    readonly_fields = ("sha256", "published_at", "published_by", "preview")
    fields = ("version", "language", "text", "sha256", "published_at", "published_by", "preview")
    actions = None

    @admin.display(description=_("SHA-256"))
    def short_hash(self, obj):
        return f"{obj.sha256[:16]}…"

    @admin.display(description=_("Preview"))
    def preview(self, obj):
        if not obj.pk:
            return _("Save the draft to see the preview.")
        url = reverse("admin:consent_termsversion_publish", args=[obj.pk])
        label = _("Show the preview") if obj.is_published else _("Preview and publish")
        return format_html('<a class="button" href="{}">{}</a>', url, label)

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_published:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        publish = self.admin_site.admin_view(self.publish_view)
        return [
            path("<int:pk>/publish/", publish, name="consent_termsversion_publish"),
            *super().get_urls(),
        ]

    def publish_view(self, request, pk: int):
        """The text as customers will see it; Administrators publish it from here."""
        terms = get_object_or_404(TermsVersion, pk=pk)
        if not self.has_view_permission(request, terms):
            raise PermissionDenied
        may_publish = request.user.has_perm(PUBLISH_TERMS)
        if request.method == "POST":
            if not may_publish:
                raise PermissionDenied
            try:
                actions.publish_terms(terms=terms, by_user=request.user,
                                      ip=client_ip.of(request))
            except actions.ConsentRefused as refused:
                messages.error(request, str(refused))
            else:
                messages.success(request, _("Version %(v)s is published.") % {"v": terms})
            return redirect("admin:consent_termsversion_change", pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Preview of %(v)s") % {"v": terms},
            # A draft is shown as it will be published: with the configured retention.
            "terms": terms if terms.is_published else terms.with_retention(
                actions.configured_retention()),
            "may_publish": may_publish and not terms.is_published,
            "opts": self.model._meta,
        }
        return render(request, "admin/consent/termsversion/publish.html", context)


@admin.register(ConsentAcceptance)
class ConsentAcceptanceAdmin(ReadOnlyAdmin):
    list_display = ("session", "customer_name", "terms", "full_control", "accepted_at",
                    "receipt_link")
    list_filter = ("terms", "full_control", "accepted_at")
    search_fields = ("=session__reference", "customer_name")
    date_hierarchy = "accepted_at"

    @admin.display(description=_("Receipt"))
    def receipt_link(self, obj):
        url = reverse("admin:consent_consentacceptance_receipt", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Open the receipt"))

    def get_urls(self):
        receipt = self.admin_site.admin_view(self.receipt_view)
        return [
            path("<int:pk>/receipt/", receipt, name="consent_consentacceptance_receipt"),
            *super().get_urls(),
        ]

    def receipt_view(self, request, pk: int):
        """The customer's receipt, as they saw it; who opened it is audited."""
        consent = get_object_or_404(ConsentAcceptance.objects.select_related("session"), pk=pk)
        if not self.has_view_permission(request, consent):
            raise PermissionDenied
        record_for_request(request, event_type=EventType.RECEIPT_VIEWED,
                           session_ref=consent.session.reference,
                           details={"consent_id": consent.pk})
        return render(request, "consent/receipt.html", receipt_context(consent))


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = ("session", "kind", "at", "by_customer", "ip")
    list_filter = ("kind", "at")
    search_fields = ("=session__reference",)
