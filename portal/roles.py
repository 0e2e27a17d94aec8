"""The three staff roles, as groups with permissions. Later features add their permissions here."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

SUPPORT_STAFF = "Support staff"
COMPLIANCE_OFFICER = "Compliance officer"
ADMINISTRATOR = "Administrator"

ROLE_LABELS = {
    SUPPORT_STAFF: _("Support staff"),
    COMPLIANCE_OFFICER: _("Compliance officer"),
    ADMINISTRATOR: _("Administrator"),
}

# The permissions the code checks, as "app_label.codename", spelled only here (the models' Meta
# declares their codenames); views, the admin, the sockets and the roles below use these names.
RUN_SESSIONS = "portal.run_sessions"
REVIEW_EVIDENCE = "portal.review_evidence"
WATCH_RECORDINGS = "portal.watch_recordings"
ADMINISTER_PORTAL = "portal.administer_portal"
SET_LEGAL_HOLD = "recordings.set_legal_hold"
PUBLISH_TERMS = "consent.publish_termsversion"
CHANGE_USER = "auth.change_user"
MANAGE_ACCOUNTS = (ADMINISTER_PORTAL, CHANGE_USER)  # second factors, roles, account changes
RESET_SECOND_FACTOR = ("otp_totp.delete_totpdevice", "otp_static.delete_staticdevice")

# "app_label.codename"; a permission whose model does not exist yet is skipped until it does.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    SUPPORT_STAFF: [
        RUN_SESSIONS,
    ],
    COMPLIANCE_OFFICER: [
        REVIEW_EVIDENCE,
        WATCH_RECORDINGS,
        "audit.view_auditevent",
        "audit.verify_chain",
        "auditlog.view_logentry",
        "sessions_app.view_supportsession",
        "sessions_app.view_sessionkey",
        "sessions_app.view_closedday",
        "sessions_app.view_team",
        "consent.view_termsversion",
        "consent.view_consentacceptance",
        "consent.view_consentevent",
        "recordings.view_recording",
        SET_LEGAL_HOLD,
        "recordings.view_recordingexport",
    ],
    ADMINISTRATOR: [
        ADMINISTER_PORTAL,
        "auth.view_user",
        "auth.add_user",
        CHANGE_USER,
        "auth.view_group",
        "otp_totp.view_totpdevice",
        "otp_static.view_staticdevice",
        *RESET_SECOND_FACTOR,
        "portal.view_enrolmentcode",
        "portal.view_rolechangerequest",
        "sessions_app.view_closedday",
        "sessions_app.add_closedday",
        "sessions_app.change_closedday",
        "sessions_app.delete_closedday",
        "sessions_app.view_team",
        "sessions_app.add_team",
        "sessions_app.change_team",
        "consent.view_termsversion",
        "consent.add_termsversion",
        "consent.change_termsversion",
        PUBLISH_TERMS,
    ],
}


def sync_roles(apps, schema_editor=None) -> None:
    """Create the role groups and grant exactly their permissions (for data migrations)."""
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations ran; create those known so far.
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, apps=apps, verbosity=0)

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, names in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        permissions = []
        for name in names:
            app_label, codename = name.split(".", 1)
            permission = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if permission is not None:
                permissions.append(permission)
        group.permissions.set(permissions)


def role_of(user) -> list[str]:
    """Names of the roles a user holds."""
    return [name for name in user.groups.values_list("name", flat=True) if name in ROLE_LABELS]
