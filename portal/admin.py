"""Users, roles and second factors in the admin, without a way to raise one's own rights.

Roles (groups), raw permissions and the superuser and staff flags are shown, never edited here:
roles change through role change requests (``portal.role_changes``, four eyes for the powerful
roles), second factors through enrolment codes and resets (``portal.enrolment``). A privileged
account's password and second factor change only through an approved four-eyes request
(``portal.account_changes``); nobody sets their own here.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.event_types import EventType
from audit.events import Actor, record
from portal import account_changes, client_ip, enrolment, role_changes
from portal.admin_site import ReadOnlyAdmin
from portal.models import (
    EnrolmentCode,
    RequestKind,
    RequestState,
    RoleChange,
    RoleChangeRequest,
)
from portal.roles import MANAGE_ACCOUNTS, RESET_SECOND_FACTOR, ROLE_LABELS
from portal.staff_access import close_user_sockets

User = get_user_model()


class RoleChangeForm(forms.Form):
    change = forms.ChoiceField(label=_("Change"), choices=RoleChange.choices)
    role = forms.ChoiceField(label=_("Role"), choices=list(ROLE_LABELS.items()))
    note = forms.CharField(label=_("Reason"), max_length=300, required=False)


class AccountChangeForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Request"),
        choices=[(kind.value, kind.label) for kind in account_changes.ACCOUNT_KINDS],
    )
    note = forms.CharField(label=_("Reason"), max_length=300)


# The direct steps a privileged account's request replaces: URL name and request kind.
DIRECT_STEPS = {
    "password": RequestKind.PASSWORD,
    "second-factor-reset": RequestKind.SECOND_FACTOR_RESET,
    "enrolment": RequestKind.ENROLMENT_CODE,
}


for model in (User, Group, TOTPDevice, StaticDevice):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    """Staff accounts: names, password, active or not. Roles and factors have their own steps."""

    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (_("Access"), {"fields": ("is_active", "is_staff", "roles", "second_factor")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("is_staff", "roles", "second_factor", "last_login", "date_joined")
    list_display = ("username", "first_name", "last_name", "email", "is_active", "role_list")
    list_filter = ("is_active", "groups")
    filter_horizontal = ()

    @admin.display(description=_("Roles"))
    def role_list(self, obj) -> str:
        labels = [str(ROLE_LABELS[name]) for name in obj.groups.values_list("name", flat=True)
                  if name in ROLE_LABELS]
        if obj.is_superuser:
            labels.append(str(_("superuser")))
        return ", ".join(labels) or "–"

    @admin.display(description=_("Roles"))
    def roles(self, obj):
        if obj is None or obj.pk is None:
            return _("Roles are requested after the account is saved.")
        pending = RoleChangeRequest.objects.filter(
            user=obj, state=RequestState.PENDING, expires_at__gt=timezone.now()
        ).count()
        waiting = (
            format_html(" ({})", _("requests waiting: %(count)d") % {"count": pending})
            if pending else ""
        )
        link = reverse("admin:portal_user_roles", args=[obj.pk])
        return format_html(
            '{}{} <a class="button" href="{}">{}</a>',
            self.role_list(obj), waiting, link, _("Request a role change"),
        )

    @admin.display(description=_("Second factor"))
    def second_factor(self, obj):
        if obj is None or obj.pk is None:
            return "–"
        four_eyes = account_changes.needs_request(obj)
        request_url = reverse("admin:portal_user_account_request", args=[obj.pk])
        if enrolment.has_authenticator(obj):
            state = _("Authenticator app set up.")
            link, label = reverse("admin:portal_user_reset_factor", args=[obj.pk]), _(
                "Reset second factor"
            )
            if four_eyes:
                link = f"{request_url}?kind={RequestKind.SECOND_FACTOR_RESET}"
                label = _("Request a reset of the second factor")
        else:
            state = _("No authenticator app yet.")
            usable = EnrolmentCode.usable().filter(user=obj).order_by("-expires_at").first()
            if usable is not None:
                state = format_html(
                    "{} {}", state,
                    _("An enrolment code is valid until %(when)s.")
                    % {"when": timezone.localtime(usable.expires_at).strftime("%Y-%m-%d %H:%M")},
                )
            link, label = reverse("admin:portal_user_enrolment", args=[obj.pk]), _(
                "Start enrolment"
            )
            if four_eyes:
                link = f"{request_url}?kind={RequestKind.ENROLMENT_CODE}"
                label = _("Request an enrolment code")
        return format_html('{} <a class="button" href="{}">{}</a>', state, link, label)

    def has_change_permission(self, request, obj=None):
        # A superuser's account is for superusers only: no password or factor change by others.
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.is_staff = True  # every account here is a staff account
        if change and "is_active" in form.changed_data:
            if obj.pk == request.user.pk:
                raise PermissionDenied  # nobody locks themselves out, or back in
            super().save_model(request, obj, form, change)
            # The admin's change view is one transaction: the event commits with the change.
            record(
                event_type=(EventType.ACCOUNT_ACTIVATED if obj.is_active
                            else EventType.ACCOUNT_DEACTIVATED),
                actor=Actor.staff(request.user), ip=client_ip.of(request),
                details={"user": obj.get_username()},
            )
            if not obj.is_active:
                close_user_sockets(obj.pk, reason="deactivated")
            return
        super().save_model(request, obj, form, change)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/enrolment/", view(self.enrolment_view), name="portal_user_enrolment"),
            path("<int:pk>/reset-second-factor/", view(self.reset_factor_view),
                 name="portal_user_reset_factor"),
            path("<int:pk>/roles/", view(self.roles_view), name="portal_user_roles"),
            path("<int:pk>/account-request/", view(self.account_request_view),
                 name="portal_user_account_request"),
            *super().get_urls(),
        ]

    def _subject(self, request, pk: int, *permissions: str):
        user = get_object_or_404(User, pk=pk)
        if not (request.user.has_perms((*MANAGE_ACCOUNTS, *permissions))
                and self.has_change_permission(request, user)):
            raise PermissionDenied
        return user

    def _page(self, request, template: str, subject, **context):
        return render(request, template, {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": subject,
            "change_url": reverse("admin:auth_user_change", args=[subject.pk]),
            **context,
        })

    def _refuse_direct_step(self, request, subject, step: str):
        """A redirect instead of the direct step, for one's own or a privileged account."""
        own = account_changes.own_account_refusal(user=subject, by_user=request.user)
        if own is None and not account_changes.needs_request(subject):
            return None
        if request.method == "POST":
            account_changes.record_refusal(
                user=subject, by_user=request.user, step=step, ip=client_ip.of(request),
                reason="own account" if own else "privileged account",
            )
        if own is not None:
            if step == "password":
                messages.error(request, _(
                    "Change your own password here: this form asks for your current password."
                ))
                return redirect("admin:password_change")
            messages.error(request, own)
            return redirect("admin:auth_user_change", subject.pk)
        messages.error(request, _(
            "This person holds a privileged role: a second administrator must approve this step. "
            "Request it here; the approving administrator receives the new password or "
            "enrolment code."
        ))
        url = reverse("admin:portal_user_account_request", args=[subject.pk])
        return redirect(f"{url}?kind={DIRECT_STEPS[step]}")

    @method_decorator(sensitive_post_parameters())
    def user_change_password(self, request, id, form_url=""):
        """Django's password form, refused for privileged accounts and one's own; audited."""
        subject = self.get_object(request, unquote(id))
        if subject is None or not self.has_change_permission(request, subject):
            return super().user_change_password(request, id, form_url)  # 404 or 403
        refused = self._refuse_direct_step(request, subject, "password")
        if refused is not None:
            return refused
        with transaction.atomic():
            role_changes.lock(subject)
            # A privileged role granted since the check above closes the direct path.
            became_privileged = account_changes.needs_request(subject)
            if not became_privileged:
                response = super().user_change_password(request, id, form_url)
                if request.method == "POST" and response.status_code == 302:
                    account_changes.record_password_set(user=subject, by_user=request.user,
                                                        ip=client_ip.of(request))
        if became_privileged:
            return self._refuse_direct_step(request, subject, "password")
        return response

    def account_request_view(self, request, pk: int):
        """Request a new password or second factor for a privileged account (four eyes)."""
        subject = get_object_or_404(User, pk=pk)
        if not (role_changes.may_manage_roles(request.user)
                and self.has_change_permission(request, subject)):
            raise PermissionDenied
        if request.method == "POST":
            form = AccountChangeForm(request.POST)
        else:
            form = AccountChangeForm(initial={"kind": request.GET.get("kind")})
        if form.is_valid():
            try:
                account_changes.request_account_change(
                    user=subject, by_user=request.user, ip=client_ip.of(request),
                    **form.cleaned_data,
                )
            except account_changes.AccountChangeRefused as refused:
                messages.error(request, str(refused))
            else:
                messages.warning(request, _(
                    "The request is recorded. A second administrator approves it under "
                    "four-eyes requests and receives the new password or enrolment code."
                ))
                return redirect("admin:auth_user_change", subject.pk)
        return self._page(
            request, "admin/portal/account_request.html", subject,
            title=_("Request for the account of %(user)s") % {"user": subject.get_username()},
            form=form,
        )

    def enrolment_view(self, request, pk: int):
        """Start someone's enrolment: a one-time code, shown to the administrator this once."""
        subject = self._subject(request, pk)
        refused = self._refuse_direct_step(request, subject, "enrolment")
        if refused is not None:
            return refused
        if request.method == "POST":
            try:
                issued = enrolment.issue_code(user=subject, by=Actor.staff(request.user),
                                              ip=client_ip.of(request))
            except enrolment.EnrolmentRefused as refused:
                messages.error(request, str(refused))
                return redirect("admin:auth_user_change", subject.pk)
            return self._page(
                request, "admin/portal/enrolment_code.html", subject,
                title=_("Enrolment code for %(user)s") % {"user": subject.get_username()},
                code=enrolment.format_code(issued.code),
                expires_at=issued.stored.expires_at,
                enrol_url=request.build_absolute_uri(reverse("staff-enrol")),
            )
        return self._page(
            request, "admin/portal/confirm.html", subject,
            title=_("Start enrolment for %(user)s") % {"user": subject.get_username()},
            text=_("A one-time enrolment code is made for this person. They need it, together "
                   "with their password, to set up their authenticator app. Earlier unused "
                   "codes stop working."),
            button=_("Start enrolment"),
        )

    def reset_factor_view(self, request, pk: int):
        """Delete someone's authenticator and backup codes, after a lost or replaced phone."""
        subject = self._subject(request, pk, *RESET_SECOND_FACTOR)
        refused = self._refuse_direct_step(request, subject, "second-factor-reset")
        if refused is not None:
            return refused
        if request.method == "POST":
            try:
                enrolment.reset_second_factor(user=subject, by=Actor.staff(request.user),
                                              ip=client_ip.of(request))
            except enrolment.EnrolmentRefused as refused:
                messages.error(request, str(refused))
            else:
                messages.success(request, _(
                    "The second factor is reset. Start the enrolment to give this person a new "
                    "enrolment code."
                ))
            return redirect("admin:auth_user_change", subject.pk)
        return self._page(
            request, "admin/portal/confirm.html", subject,
            title=_("Reset the second factor of %(user)s") % {"user": subject.get_username()},
            text=_("The authenticator app and all backup codes of this person stop working at "
                   "once. They can sign in again only after a new enrolment."),
            button=_("Reset second factor"),
        )

    def roles_view(self, request, pk: int):
        """Request a role change for someone else; some grants wait for a second administrator."""
        subject = get_object_or_404(User, pk=pk)
        if not (role_changes.may_manage_roles(request.user)
                and self.has_change_permission(request, subject)):
            raise PermissionDenied
        form = RoleChangeForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                change_request = role_changes.request_role_change(
                    user=subject, by_user=request.user, ip=client_ip.of(request),
                    **form.cleaned_data,
                )
            except role_changes.RoleChangeRefused as refused:
                messages.error(request, str(refused))
            else:
                if change_request.state == RequestState.APPLIED:
                    messages.success(request, _("The role change is applied."))
                else:
                    messages.warning(request, _(
                        "The request is recorded. It takes effect once a second administrator "
                        "approves it."
                    ))
                return redirect("admin:auth_user_change", subject.pk)
        return self._page(
            request, "admin/portal/role_change.html", subject,
            title=_("Request a role change for %(user)s") % {"user": subject.get_username()},
            form=form,
            current=self.role_list(subject),
        )


@admin.register(Group)
class RoleAdmin(GroupAdmin, ReadOnlyAdmin):
    """The roles and their permissions are defined in code (``portal/roles.py``): shown only."""

    fields = ("name", "permission_list")
    readonly_fields = ("name", "permission_list")

    @admin.display(description=_("Permissions"))
    def permission_list(self, obj):
        return format_html_join(
            "", "<div>{}</div>",
            ((f"{p.content_type.app_label}.{p.codename}",)
             for p in obj.permissions.select_related("content_type").order_by("codename")),
        )


@admin.register(TOTPDevice)
class PortalTOTPDeviceAdmin(ReadOnlyAdmin, TOTPDeviceAdmin):
    """Shown only: resetting goes through the user's page, audited."""


@admin.register(StaticDevice)
class PortalStaticDeviceAdmin(ReadOnlyAdmin, StaticDeviceAdmin):
    """Shown only: resetting goes through the user's page, audited."""


@admin.register(EnrolmentCode)
class EnrolmentCodeAdmin(ReadOnlyAdmin):
    list_display = ("user", "issued_by", "issued_at", "expires_at", "used_at", "revoked_at",
                    "expired_at")
    list_filter = ("issued_at",)
    fields = list_display


@admin.register(RoleChangeRequest)
class RoleChangeRequestAdmin(ReadOnlyAdmin):
    list_display = ("user", "kind", "change", "role", "state", "requested_by", "requested_at",
                    "expires_at", "decided_by", "decided_at")
    list_filter = ("state", "kind", "role", "change")
    fields = (*list_display, "note", "decision")
    readonly_fields = ("decision",)

    @admin.display(description=_("Decision"))
    def decision(self, obj):
        if obj.state != RequestState.PENDING or obj.expires_at <= timezone.now():
            return "–"
        url = reverse("admin:portal_rolechangerequest_decide", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Approve or reject"))

    def get_urls(self):
        decide = self.admin_site.admin_view(self.decide_view)
        return [
            path("<int:pk>/decide/", decide, name="portal_rolechangerequest_decide"),
            *super().get_urls(),
        ]

    def decide_view(self, request, pk: int):
        """A second administrator approves (or any administrator rejects) a waiting request."""
        change_request = get_object_or_404(
            RoleChangeRequest.objects.select_related("user", "requested_by"), pk=pk
        )
        if not role_changes.may_manage_roles(request.user):
            raise PermissionDenied
        if request.method == "POST":
            decision = request.POST.get("decision")
            about_account = change_request.kind != RequestKind.ROLE
            approve = (account_changes.approve_account_change if about_account
                       else role_changes.approve_role_change)
            action = {"approve": approve,
                      "reject": role_changes.reject_role_change}.get(decision)
            if action is None:
                messages.error(request, _("Choose approve or reject."))
            else:
                try:
                    done = action(change_request=change_request, by_user=request.user,
                                  ip=client_ip.of(request))
                except role_changes.RoleChangeRefused as refused:
                    messages.error(request, str(refused))
                else:
                    if about_account and decision == "approve":
                        return self._carried_out_page(request, done)
                    messages.success(request, _("The role change is applied.")
                                     if decision == "approve" else _("The request is rejected."))
            return redirect("admin:portal_rolechangerequest_change", change_request.pk)
        return render(request, "admin/portal/decide.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": str(change_request),
            "change_request": change_request,
            "own_request": change_request.requested_by_id == request.user.pk,
            "about_account": change_request.kind != RequestKind.ROLE,
            "set_up_by_requester": role_changes.set_up_by_requester(change_request),
        })

    def _carried_out_page(self, request, done: account_changes.CarriedOut):
        """The new password or enrolment code, shown to the approving administrator this once."""
        subject = done.change_request.user
        is_password = done.change_request.kind == RequestKind.PASSWORD
        return render(request, "admin/portal/account_change_done.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": (_("New password for %(user)s") if is_password
                      else _("Enrolment code for %(user)s")) % {"user": subject.get_username()},
            "original": subject,
            "is_password": is_password,
            "secret": done.secret if is_password else enrolment.format_code(done.secret),
            "expires_at": done.expires_at,
            "enrol_url": request.build_absolute_uri(reverse("staff-enrol")),
            "change_url": reverse("admin:auth_user_change", args=[subject.pk]),
            "reset": done.change_request.kind == RequestKind.SECOND_FACTOR_RESET,
        })
