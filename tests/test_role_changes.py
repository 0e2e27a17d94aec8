"""Roles change only through requests: never one's own, four eyes for the powerful roles.

- carol and erika: Administrators. carol requests, erika approves (or the other way round).
"""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.event_types import EventType
from portal import role_changes
from portal.models import RequestState, RoleChangeRequest
from portal.roles import ADMINISTRATOR, COMPLIANCE_OFFICER, SUPPORT_STAFF
from portal.tasks import expire_enrolment_codes_and_role_requests
from tests.personas import events, make_staff, sign_in_verified

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def erika(db):
    """A second administrator, for the four-eyes approval."""
    return make_staff("erika", ADMINISTRATOR)


def roles_of(user) -> set[str]:
    return set(User.objects.get(pk=user.pk).groups.values_list("name", flat=True))


def change_form(user, **changes) -> dict:
    """What the user's change form posts, plus whatever an attacker adds to it."""
    return {
        "username": user.username, "first_name": user.first_name, "last_name": user.last_name,
        "email": user.email, "is_active": "on",
        "date_joined_0": "2026-01-01", "date_joined_1": "08:00:00",
        "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "08:00:00",
        **changes,
    }


def ask(client, admin, user, *, role: str, change: str = "grant"):
    sign_in_verified(client, admin)
    return client.post(f"/admin/auth/user/{user.pk}/roles/",
                       {"role": role, "change": change, "note": "new job"}, follow=True)


def decide(client, admin, change_request, decision: str):
    sign_in_verified(client, admin)
    return client.post(f"/admin/portal/rolechangerequest/{change_request.pk}/decide/",
                       {"decision": decision}, follow=True)


def test_an_administrator_cannot_make_herself_superuser_in_the_user_form(client, carol):
    sign_in_verified(client, carol)
    everything = Permission.objects.values_list("pk", flat=True)
    for target in (carol, make_staff("zoe", SUPPORT_STAFF)):
        response = client.post(
            f"/admin/auth/user/{target.pk}/change/",
            change_form(
                target,
                is_superuser="on", is_staff="on",
                groups=[g.pk for g in Group.objects.all()],
                user_permissions=list(everything),
            ),
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        target = User.objects.get(pk=target.pk)
        assert not target.is_superuser
        assert not target.user_permissions.exists()
    assert roles_of(carol) == {ADMINISTRATOR}
    assert roles_of(User.objects.get(username="zoe")) == {SUPPORT_STAFF}
    assert not User.objects.get(pk=carol.pk).has_perm("audit.view_auditevent")


def test_the_user_form_shows_roles_but_offers_no_fields_for_them(client, carol, alice):
    sign_in_verified(client, carol)
    page = client.get(f"/admin/auth/user/{alice.pk}/change/").content.decode()
    for field in ("is_superuser", "groups", "user_permissions", "is_staff"):
        assert f'name="{field}"' not in page, field
    assert "Support staff" in page and "Request a role change" in page


def test_an_administrator_cannot_take_an_is_staff_flag_away_or_give_one(client, carol, alice):
    sign_in_verified(client, carol)
    client.post(f"/admin/auth/user/{alice.pk}/change/", change_form(alice))  # no is_staff sent
    assert User.objects.get(pk=alice.pk).is_staff


def test_new_accounts_are_staff_accounts_without_roles(client, carol):
    sign_in_verified(client, carol)
    response = client.post("/admin/auth/user/add/", {
        "username": "neue", "usable_password": "true",
        "password1": "a-long-Password-4711", "password2": "a-long-Password-4711",
        "is_superuser": "on", "groups": [Group.objects.get(name=ADMINISTRATOR).pk],
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    new = User.objects.get(username="neue")
    assert new.is_staff and not new.is_superuser and not new.groups.exists()


def test_roles_cannot_be_edited_as_groups(client, carol):
    sign_in_verified(client, carol)
    group = Group.objects.get(name=COMPLIANCE_OFFICER)
    assert client.get(f"/admin/auth/group/{group.pk}/change/").status_code == 200
    response = client.post(f"/admin/auth/group/{group.pk}/change/", {
        "name": COMPLIANCE_OFFICER,
        "permissions": list(Permission.objects.values_list("pk", flat=True)),
    })
    assert response.status_code == 403
    assert client.post("/admin/auth/group/add/", {"name": "Everything"}).status_code == 403
    assert not Group.objects.filter(name="Everything").exists()


def test_nobody_requests_a_change_of_their_own_roles(client, carol):
    page = ask(client, carol, carol, role=COMPLIANCE_OFFICER).content.decode()
    assert "Nobody can change their own roles." in page
    assert not RoleChangeRequest.objects.exists()
    with pytest.raises(role_changes.RoleChangeRefused):
        role_changes.request_role_change(user=carol, role=ADMINISTRATOR, change="remove",
                                         by_user=carol)


def test_a_compliance_officer_grant_waits_for_a_second_administrator(client, carol, erika, alice):
    page = ask(client, carol, alice, role=COMPLIANCE_OFFICER).content.decode()
    assert "It takes effect once a second administrator approves it." in page
    [change_request] = RoleChangeRequest.objects.all()
    assert change_request.state == RequestState.PENDING
    assert roles_of(alice) == {SUPPORT_STAFF}

    # The requester cannot approve it herself.
    page = decide(client, carol, change_request, "approve").content.decode()
    assert "a second administrator must approve it" in page
    assert roles_of(alice) == {SUPPORT_STAFF}
    assert not events(EventType.ROLE_CHANGE_APPROVED)

    decide(client, erika, change_request, "approve")
    assert roles_of(alice) == {SUPPORT_STAFF, COMPLIANCE_OFFICER}
    change_request.refresh_from_db()
    assert change_request.state == RequestState.APPLIED and change_request.decided_by == erika

    [requested] = events(EventType.ROLE_CHANGE_REQUESTED)
    assert requested.actor_id == carol.pk
    assert requested.details["needs_second_administrator"] is True
    assert requested.details["role"] == COMPLIANCE_OFFICER and requested.details["user"] == "alice"
    [approved] = events(EventType.ROLE_CHANGE_APPROVED)
    assert approved.actor_id == erika.pk and approved.details["requested_by"] == "carol"
    [changed] = events(EventType.ROLE_CHANGED)
    assert changed.details["approved_by"] == "erika" and changed.details["change"] == "grant"
    assert approved.seq < changed.seq


def test_an_approved_request_is_applied_once(client, carol, erika, alice):
    ask(client, carol, alice, role=ADMINISTRATOR)
    change_request = RoleChangeRequest.objects.get()
    decide(client, erika, change_request, "approve")
    again = decide(client, erika, change_request, "approve").content.decode()
    assert "decided already" in again
    with pytest.raises(role_changes.RoleChangeRefused):
        role_changes.reject_role_change(change_request=change_request, by_user=erika)
    assert len(events(EventType.ROLE_CHANGED)) == 1
    assert len(events(EventType.ROLE_CHANGE_APPROVED)) == 1


def test_the_person_concerned_cannot_decide_about_their_own_request(carol, erika):
    change_request = role_changes.request_role_change(
        user=erika, role=COMPLIANCE_OFFICER, change="grant", by_user=carol
    )
    with pytest.raises(role_changes.RoleChangeRefused, match="their own roles"):
        role_changes.approve_role_change(change_request=change_request, by_user=erika)
    assert roles_of(erika) == {ADMINISTRATOR}


def test_a_rejected_request_changes_nothing(client, carol, erika, alice):
    ask(client, carol, alice, role=ADMINISTRATOR)
    change_request = RoleChangeRequest.objects.get()
    decide(client, erika, change_request, "reject")
    assert roles_of(alice) == {SUPPORT_STAFF}
    change_request.refresh_from_db()
    assert change_request.state == RequestState.REJECTED
    [rejected] = events(EventType.ROLE_CHANGE_REJECTED)
    assert rejected.actor_id == erika.pk and rejected.details["withdrawn"] is False
    assert not events(EventType.ROLE_CHANGED)


def test_support_staff_grants_and_removals_take_effect_at_once(client, carol, bob):
    ask(client, carol, bob, role=SUPPORT_STAFF)
    assert roles_of(bob) == {COMPLIANCE_OFFICER, SUPPORT_STAFF}
    ask(client, carol, bob, role=COMPLIANCE_OFFICER, change="remove")
    assert roles_of(bob) == {SUPPORT_STAFF}
    assert [e.details["change"] for e in events(EventType.ROLE_CHANGED)] == ["grant", "remove"]
    assert len(events(EventType.ROLE_CHANGE_REQUESTED)) == 2
    assert not events(EventType.ROLE_CHANGE_APPROVED)


def test_a_request_expires_undecided(carol, erika, alice, settings):
    change_request = role_changes.request_role_change(
        user=alice, role=ADMINISTRATOR, change="grant", by_user=carol
    )
    later = timezone.now() + timedelta(days=settings.ROLE_REQUEST_DAYS, minutes=1)
    with time_machine.travel(later):
        with pytest.raises(role_changes.RoleChangeRefused, match="expired"):
            role_changes.approve_role_change(change_request=change_request, by_user=erika)
        assert expire_enrolment_codes_and_role_requests()["role_requests"] == 1
        assert expire_enrolment_codes_and_role_requests()["role_requests"] == 0
    assert roles_of(alice) == {SUPPORT_STAFF}
    change_request.refresh_from_db()
    assert change_request.state == RequestState.EXPIRED
    assert len(events(EventType.ROLE_CHANGE_EXPIRED)) == 1
    assert not events(EventType.ROLE_CHANGE_APPROVED)  # the refused approval left no trace


def test_only_administrators_request_or_decide(client, alice, bob, carol):
    sign_in_verified(client, bob)
    response = client.post(f"/admin/auth/user/{alice.pk}/roles/",
                           {"role": COMPLIANCE_OFFICER, "change": "grant"})
    assert response.status_code == 403
    change_request = role_changes.request_role_change(
        user=alice, role=COMPLIANCE_OFFICER, change="grant", by_user=carol
    )
    response = client.post(f"/admin/portal/rolechangerequest/{change_request.pk}/decide/",
                           {"decision": "approve"})
    assert response.status_code == 403
    assert roles_of(alice) == {SUPPORT_STAFF}


def test_role_pages_need_a_verified_second_factor(client, carol, alice):
    client.force_login(carol)  # password only
    response = client.post(f"/admin/auth/user/{alice.pk}/roles/",
                           {"role": SUPPORT_STAFF, "change": "remove"})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")  # which leads to the code step
    assert roles_of(alice) == {SUPPORT_STAFF}


def test_administrators_see_the_requests_and_their_state(client, carol, erika, alice):
    ask(client, carol, alice, role=COMPLIANCE_OFFICER)
    sign_in_verified(client, erika)
    listing = client.get("/admin/portal/rolechangerequest/").content.decode()
    assert "alice" in listing and "waiting for a second administrator" in listing
    change_request = RoleChangeRequest.objects.get()
    page = client.get(f"/admin/portal/rolechangerequest/{change_request.pk}/change/")
    assert "Approve or reject" in page.content.decode()


def test_a_superusers_account_is_beyond_an_administrators_reach(client, carol):
    root = User.objects.create_superuser("root", "root@bank.example", "a-long-Password-4711",
                                        is_staff=True)
    sign_in_verified(client, carol)
    assert client.get(f"/admin/auth/user/{root.pk}/change/").status_code == 200  # view only
    response = client.post(f"/admin/auth/user/{root.pk}/password/",
                           {"password1": "x-Stolen-4711-pw", "password2": "x-Stolen-4711-pw"})
    assert response.status_code == 403
    assert client.post(f"/admin/auth/user/{root.pk}/enrolment/").status_code == 403
    with pytest.raises(role_changes.RoleChangeRefused):
        role_changes.request_role_change(user=root, role=SUPPORT_STAFF, change="grant",
                                         by_user=carol)


def test_a_superuser_still_administers_everything(client, alice):
    root = User.objects.create_superuser("root", "root@bank.example", "a-long-Password-4711",
                                        is_staff=True)
    TOTPDevice.objects.create(user=root, name="Authenticator", confirmed=True)
    other = Client()
    sign_in_verified(other, root)
    for path in ("/admin/", "/admin/audit/auditevent/", "/admin/auth/user/",
                 f"/admin/auth/user/{alice.pk}/change/", "/admin/portal/rolechangerequest/"):
        assert other.get(path).status_code == 200, path
    role_changes.request_role_change(user=alice, role=SUPPORT_STAFF, change="remove",
                                     by_user=root)
    assert roles_of(alice) == set()


def test_the_admin_pages_speak_german(carol, erika, alice, erin_without_app):
    from django.conf import settings

    browser = Client()
    browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "de"
    sign_in_verified(browser, carol)
    page = browser.get(f"/admin/auth/user/{alice.pk}/change/").content.decode()
    assert "Rollenänderung beantragen" in page and "Zweiten Faktor zurücksetzen" in page
    page = browser.get(f"/admin/auth/user/{erin_without_app.pk}/change/").content.decode()
    assert "Einrichtung starten" in page
    assert "Einrichtung starten" in browser.get(
        f"/admin/auth/user/{erin_without_app.pk}/enrolment/").content.decode()
    page = browser.post(f"/admin/auth/user/{erin_without_app.pk}/enrolment/").content.decode()
    assert "Geben Sie diesen Einrichtungscode der Person" in page
    page = browser.get(f"/admin/auth/user/{alice.pk}/roles/").content.decode()
    assert "erteilen" in page and "Compliance-Beauftragte" in page
    change_request = role_changes.request_role_change(
        user=alice, role=ADMINISTRATOR, change="grant", by_user=carol
    )
    sign_in_verified(browser, erika)
    page = browser.get(f"/admin/portal/rolechangerequest/{change_request.pk}/decide/")
    assert "die Rolle Administrator zu erteilen" in page.content.decode()


@pytest.fixture
def erin_without_app(db):
    return make_staff("erin", None, with_device=False)


@pytest.mark.django_db(transaction=True)
def test_two_approvals_at_the_same_moment_apply_the_change_once(carol, erika, alice):
    import threading

    from django.db import connection

    frank = make_staff("frank", ADMINISTRATOR)
    change_request = role_changes.request_role_change(
        user=alice, role=COMPLIANCE_OFFICER, change="grant", by_user=carol
    )
    go = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(admin) -> None:
        try:
            go.wait()
            role_changes.approve_role_change(
                change_request=RoleChangeRequest.objects.get(pk=change_request.pk), by_user=admin
            )
            outcomes.append("applied")
        except role_changes.RoleChangeRefused:
            outcomes.append("refused")
        except Exception as error:  # pragma: no cover - shown in the assertion
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(a,)) for a in (erika, frank)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["applied", "refused"], outcomes
    assert len(events(EventType.ROLE_CHANGED)) == 1
    assert len(events(EventType.ROLE_CHANGE_APPROVED)) == 1
    assert roles_of(alice) == {SUPPORT_STAFF, COMPLIANCE_OFFICER}
