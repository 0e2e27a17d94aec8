"""The three roles exist after migrating, each with exactly its rights."""

from django.contrib.auth.models import Group

from portal.celery import app as celery_app
from portal.roles import ADMINISTRATOR, COMPLIANCE_OFFICER, ROLE_PERMISSIONS, SUPPORT_STAFF


def test_the_migration_creates_the_three_roles(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {
        SUPPORT_STAFF, COMPLIANCE_OFFICER, ADMINISTRATOR
    }
    for role, expected in ROLE_PERMISSIONS.items():
        granted = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(name=role).permissions.select_related("content_type")
        }
        assert granted == set(expected), role


def test_each_persona_holds_only_its_rights(alice, bob, carol, dave):
    assert alice.has_perm("portal.run_sessions")
    assert not alice.has_perm("audit.view_auditevent")

    assert bob.has_perm("audit.view_auditevent") and bob.has_perm("portal.watch_recordings")
    assert not bob.has_perm("portal.run_sessions")

    assert carol.has_perm("auth.change_user") and carol.has_perm("portal.administer_portal")
    assert not carol.has_perm("portal.watch_recordings")
    assert not carol.has_perm("audit.view_auditevent")

    assert not any(
        dave.has_perm(p) for perms in ROLE_PERMISSIONS.values() for p in perms
    )


def test_the_nightly_verification_is_scheduled():
    schedule = celery_app.conf.beat_schedule
    assert any(
        entry["task"] == "audit.tasks.verify_audit_chain" for entry in schedule.values()
    )
    celery_app.loader.import_default_modules()  # what a worker does at start
    assert "audit.tasks.verify_audit_chain" in celery_app.tasks
