"""The admin site: two factors required, roles decide what each person sees."""

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.apps import apps
from django.contrib.auth.models import Group, User

from audit.events import Actor, record
from tests.personas import sign_in_password_only, sign_in_verified

AUDIT_LIST = "/admin/audit/auditevent/"


def test_password_only_cannot_reach_the_admin(client, bob):
    sign_in_password_only(client, bob)
    for path in ("/admin/", AUDIT_LIST):
        response = client.get(path, follow=True)
        final_url, _status = response.redirect_chain[-1]
        assert final_url.startswith("/staff/login/code/")
        assert "test.event" not in response.content.decode()


def test_the_admin_has_no_login_form_of_its_own(client, db):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/staff/login/?next=%2Fadmin%2F"


def test_a_compliance_officer_reads_the_audit_trail(client, bob):
    record(event_type="test.event", actor=Actor.system())
    sign_in_verified(client, bob)
    response = client.get(AUDIT_LIST)
    assert response.status_code == 200
    assert "test.event" in response.content.decode()
    assert "has not been verified yet" in response.content.decode() or "noch nicht" in (
        response.content.decode()
    )
    # read-only: no add, no change, no delete
    assert client.get(f"{AUDIT_LIST}add/").status_code == 403
    event_id = record(event_type="test.other", actor=Actor.system()).pk
    assert client.post(f"{AUDIT_LIST}{event_id}/delete/", {"post": "yes"}).status_code == 403


def test_support_staff_and_administrators_do_not_read_the_audit_trail(client, alice, carol):
    for user in (alice, carol):
        sign_in_verified(client, user)
        assert client.get(AUDIT_LIST).status_code == 403


def test_an_administrator_manages_users_but_sees_no_authenticator_secrets(client, carol, alice):
    sign_in_verified(client, carol)
    assert client.get("/admin/auth/user/").status_code == 200
    device_page = client.get(f"/admin/otp_totp/totpdevice/{alice.totpdevice_set.get().pk}/change/")
    assert device_page.status_code == 200
    assert alice.totpdevice_set.get().key not in device_page.content.decode()


def test_every_model_is_in_the_change_log(db):
    own_apps = {"portal", "audit", "sessions_app", "consent", "recordings"}
    excluded = {"audit.auditevent"}  # append-only and hash-chained itself
    for model in apps.get_models():
        label = model._meta.label_lower
        if model._meta.app_label in own_apps and model._meta.managed and label not in excluded:
            assert auditlog.contains(model), label
    assert auditlog.contains(User) and auditlog.contains(Group)


def test_admin_changes_are_logged_with_actor_and_resolved_address(client, carol, alice, settings):
    sign_in_verified(client, carol)
    response = client.post(
        f"/admin/auth/user/{alice.pk}/change/",
        {
            "username": "alice", "first_name": "Alice", "last_name": "Adviser",
            "email": "alice@bank.example", "is_active": "on", "is_staff": "on",
            "groups": [g.pk for g in alice.groups.all()],
            "date_joined_0": "2026-01-01", "date_joined_1": "08:00:00",
            "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "08:00:00",
        },
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_FORWARDED_FOR="127.0.0.1",  # forged: the peer is no trusted proxy
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = LogEntry.objects.get_for_object(alice).latest("timestamp")
    assert entry.actor == carol
    assert entry.remote_addr == "203.0.113.9"
    assert "first_name" in entry.changes_dict and "password" not in entry.changes_dict


def test_a_compliance_officer_reviews_sessions_and_keys_without_key_material(
    client, bob, alice, office_open
):
    from sessions_app import actions
    from tests.sessions import schedule

    session = schedule(alice)
    key, stored = actions.issue_key(session=session, by_user=alice)
    sign_in_verified(client, bob)
    for path in (
        "/admin/sessions_app/supportsession/",
        f"/admin/sessions_app/supportsession/{session.pk}/change/",
        "/admin/sessions_app/sessionkey/",
        f"/admin/sessions_app/sessionkey/{stored.pk}/change/",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        body = page.content.decode()
        assert key not in body and stored.key_hmac not in body
    assert session.reference in client.get("/admin/sessions_app/supportsession/").content.decode()
    change = client.post(f"/admin/sessions_app/supportsession/{session.pk}/change/",
                         {"customer_name": "Changed"})
    assert change.status_code == 403


def test_administrators_edit_closed_days_and_the_change_is_logged(client, carol, alice):
    from sessions_app.models import ClosedDay

    sign_in_verified(client, carol)
    response = client.post("/admin/sessions_app/closedday/add/",
                           {"date": "2026-12-24", "reason": "Heiligabend"})
    assert response.status_code == 302
    day = ClosedDay.objects.get()
    assert LogEntry.objects.get_for_object(day).get().actor == carol

    sign_in_verified(client, alice)
    assert client.get("/admin/sessions_app/closedday/").status_code == 403
