"""The admin site: the revision and audit interface, only with a verified second factor."""

from urllib.parse import urlencode

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminSite


class PortalAdminSite(OTPAdminSite):
    site_header = _("Fernwartung Portal – Administration and audit")
    site_title = _("Fernwartung Portal")
    index_title = _("Review and administration")

    def login(self, request, extra_context=None):
        """Staff sign in once, through the two-step staff sign-in, never via a second form."""
        next_url = request.GET.get("next") or reverse("admin:index")
        # Signed in with the password already: only the code is missing.
        step = "staff-login-otp" if request.user.is_authenticated else "staff-login"
        return redirect(f"{reverse(step)}?{urlencode({'next': next_url})}")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence in the admin: shown for review, never added, changed or deleted there."""

    actions = None

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
