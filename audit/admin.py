"""Audit events in the admin: read-only, with the chain's verification state at the top."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from audit.chain import last_verification
from audit.event_types import EventType
from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = (
        "seq",
        "created_at",
        "event_label",
        "actor_label",
        "actor_role",
        "client_ip",
        "session_ref",
    )
    list_filter = ("event_type", "actor_type", "created_at")
    search_fields = ("=seq", "actor_label", "session_ref", "=client_ip", "event_type")
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False
    readonly_fields = [field.name for field in AuditEvent._meta.fields]
    actions = None

    @admin.display(description=_("event"), ordering="event_type")
    def event_label(self, obj: AuditEvent) -> str:
        return obj.event_label

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        verification = last_verification()
        extra_context = {
            **(extra_context or {}),
            "last_verification": verification,
            "last_verification_intact": verification is not None
            and verification.event_type == EventType.AUDIT_VERIFIED,
        }
        return super().changelist_view(request, extra_context)
