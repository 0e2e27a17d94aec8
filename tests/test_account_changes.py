"""A privileged account's password and second factor change only with a second administrator.

- carol and erika: Administrators. carol requests, erika approves and receives the secret.
- bob: Compliance officer, the account someone might want to take over.
- alice: Support staff, whose account keeps the direct steps.
"""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.event_types import EventType
from audit.events import Actor
from portal import account_changes, enrolment, role_changes
from portal.models import EnrolmentCode, RequestKind, RequestState, RoleChangeRequest
from portal.roles import ADMINISTRATOR, COMPLIANCE_OFFICER
from portal.tasks import expire_enrolment_codes_and_role_requests
from tests.personas import PASSWORD, events, make_staff, sign_in_verified

pytestmark = pytest.mark.usefixtures("english")

STOLEN = "x-Stolen-4711-pw"
SHOWN_SECRET = re.compile(r"<code>([a-z2-7-]+)</code>")


@pytest.fixture
def erika(db):
    """A second administrator, for the four-eyes approval."""
    return make_staff("erika", ADMINISTRATOR)


@pytest.fixture
def olga(db):
    """A new compliance officer who has no authenticator app yet."""
    return make_staff("olga", COMPLIANCE_OFFICER, with_device=False)


def set_password(client, target, password: str = STOLEN):
    """Django's own admin form for someone else's password."""
    return client.post(f"/admin/auth/user/{target.pk}/password/",
                       {"password1": password, "password2": password, "usable_password": "true"},
                       follow=True)


def request_step(client, admin, target, kind: str, note: str = "lost phone, called the desk"):
    sign_in_verified(client, admin)
    return client.post(f"/admin/auth/user/{target.pk}/account-request/",
                       {"kind": kind, "note": note}, follow=True)


def decide(client, admin, change_request, decision: str = "approve"):
    sign_in_verified(client, admin)
    return client.post(f"/admin/portal/rolechangerequest/{change_request.pk}/decide/",
                       {"decision": decision}, follow=True)


def shown_secret(response) -> str:
    return SHOWN_SECRET.search(response.content.decode()).group(1)


def has_password(user, password: str) -> bool:
    return User.objects.get(pk=user.pk).check_password(password)


def test_an_administrator_cannot_set_a_privileged_persons_password_directly(
    client, carol, bob, erika
):
    sign_in_verified(client, carol)
    for target in (bob, erika):
        page = set_password(client, target).content.decode()
        assert "a second administrator must approve this step" in page
        assert has_password(target, PASSWORD) and not has_password(target, STOLEN)
        # Nor may the password be switched off (Django's "unset-password" button).
        client.post(f"/admin/auth/user/{target.pk}/password/",
                    {"usable_password": "false", "unset-password": "1"})
        assert User.objects.get(pk=target.pk).has_usable_password()
    refused = events(EventType.ACCOUNT_CHANGE_REFUSED)
    assert [(e.actor_id, e.details["user"], e.details["step"]) for e in refused] == [
        (carol.pk, "bob", "password"), (carol.pk, "bob", "password"),
        (carol.pk, "erika", "password"), (carol.pk, "erika", "password"),
    ]
    assert refused[0].details["reason"] == "privileged account"
    assert not events(EventType.PASSWORD_SET)


def test_an_administrator_cannot_reset_a_privileged_factor_or_issue_a_code_directly(
    client, carol, bob, olga
):
    sign_in_verified(client, carol)
    page = client.post(f"/admin/auth/user/{bob.pk}/reset-second-factor/", follow=True)
    assert "a second administrator must approve this step" in page.content.decode()
    assert TOTPDevice.objects.filter(user=bob, confirmed=True).exists()
    response = client.post(f"/admin/auth/user/{olga.pk}/enrolment/", follow=True)
    assert not SHOWN_SECRET.search(response.content.decode())
    assert not EnrolmentCode.objects.filter(user=olga).exists()
    with pytest.raises(enrolment.NeedsSecondAdministrator):
        enrolment.reset_second_factor(user=bob, by=Actor.staff(carol))
    assert [e.details["step"] for e in events(EventType.ACCOUNT_CHANGE_REFUSED)] == [
        "second-factor-reset", "enrolment"
    ]
    assert not events(EventType.SECOND_FACTOR_RESET)
    assert not events(EventType.ENROLMENT_STARTED)


def test_a_new_password_takes_a_second_administrator_who_alone_sees_it(client, carol, erika, bob):
    page = request_step(client, carol, bob, RequestKind.PASSWORD).content.decode()
    assert "A second administrator approves it" in page
    change_request = RoleChangeRequest.objects.get()
    assert change_request.kind == RequestKind.PASSWORD
    assert change_request.state == RequestState.PENDING
    assert has_password(bob, PASSWORD)

    # The requester cannot approve it herself.
    page = decide(client, carol, change_request).content.decode()
    assert "a second administrator must approve it" in page
    assert not SHOWN_SECRET.search(page)
    assert has_password(bob, PASSWORD)

    response = decide(client, erika, change_request)
    new_password = shown_secret(response)
    assert has_password(bob, new_password) and not has_password(bob, PASSWORD)
    change_request.refresh_from_db()
    assert change_request.state == RequestState.APPLIED and change_request.decided_by == erika
    # Shown once: deciding again shows nothing and changes nothing.
    again = decide(client, erika, change_request).content.decode()
    assert "decided already" in again and not SHOWN_SECRET.search(again)
    assert has_password(bob, new_password)

    [requested] = events(EventType.ACCOUNT_CHANGE_REQUESTED)
    assert requested.actor_id == carol.pk
    assert requested.details["kind"] == "password" and requested.details["user"] == "bob"
    assert requested.details["note"] == "lost phone, called the desk"
    [approved] = events(EventType.ACCOUNT_CHANGE_APPROVED)
    assert approved.actor_id == erika.pk and approved.details["requested_by"] == "carol"
    [password_set] = events(EventType.PASSWORD_SET)
    assert password_set.actor_id == erika.pk
    assert password_set.details["request_id"] == change_request.pk
    assert password_set.details["requested_by"] == "carol"
    assert new_password not in str(password_set.details)
    assert approved.seq < password_set.seq


def test_an_approved_reset_removes_the_factor_and_gives_the_approver_a_code(
    client, carol, erika, bob
):
    request_step(client, carol, bob, RequestKind.SECOND_FACTOR_RESET)
    change_request = RoleChangeRequest.objects.get()
    assert TOTPDevice.objects.filter(user=bob).exists()
    code = shown_secret(decide(client, erika, change_request))
    assert not TOTPDevice.objects.filter(user=bob).exists()
    stored = EnrolmentCode.objects.get(user=bob)
    assert stored.code_sha256 == enrolment.code_digest(code) and stored.issued_by == erika
    [reset] = events(EventType.SECOND_FACTOR_RESET)
    [started] = events(EventType.ENROLMENT_STARTED)
    assert reset.actor_id == started.actor_id == erika.pk
    assert reset.details["request_id"] == started.details["request_id"] == change_request.pk


def test_an_enrolment_code_for_a_privileged_newcomer_goes_to_the_approver(
    client, carol, erika, olga
):
    request_step(client, carol, olga, RequestKind.ENROLMENT_CODE)
    change_request = RoleChangeRequest.objects.get()
    assert not EnrolmentCode.objects.exists()
    code = shown_secret(decide(client, erika, change_request))
    assert enrolment.use_code(user=olga, code=code).check is enrolment.CodeCheck.OK


def test_the_person_concerned_cannot_approve_a_request_for_their_account(carol, erika):
    change_request = account_changes.request_account_change(
        user=erika, kind=RequestKind.PASSWORD, by_user=carol, note="forgot it"
    )
    with pytest.raises(account_changes.AccountChangeRefused, match="their own account"):
        account_changes.approve_account_change(change_request=change_request, by_user=erika)
    assert has_password(erika, PASSWORD)


def test_nobody_sets_their_own_password_or_factor_in_the_user_admin(client, carol):
    sign_in_verified(client, carol)
    response = set_password(client, carol)
    assert response.redirect_chain[0][0] == "/admin/password_change/"  # asks the current one
    assert has_password(carol, PASSWORD)
    page = client.post(f"/admin/auth/user/{carol.pk}/reset-second-factor/", follow=True)
    assert "for your own account" in page.content.decode()
    assert TOTPDevice.objects.filter(user=carol).exists()
    page = request_step(client, carol, carol, RequestKind.PASSWORD).content.decode()
    assert "for your own account" in page
    assert not RoleChangeRequest.objects.exists()
    assert {e.details["reason"] for e in events(EventType.ACCOUNT_CHANGE_REFUSED)} == {
        "own account"
    }


def test_support_staff_accounts_keep_the_direct_steps(client, carol, alice):
    sign_in_verified(client, carol)
    response = set_password(client, alice, "a-new-Password-4711")
    assert response.redirect_chain[-1][0] == f"/admin/auth/user/{alice.pk}/change/"
    assert has_password(alice, "a-new-Password-4711")
    [password_set] = events(EventType.PASSWORD_SET)
    assert password_set.actor_id == carol.pk and password_set.details["user"] == "alice"
    assert password_set.details["request_id"] is None
    client.post(f"/admin/auth/user/{alice.pk}/reset-second-factor/")
    assert not TOTPDevice.objects.filter(user=alice).exists()
    page = client.post(f"/admin/auth/user/{alice.pk}/enrolment/").content.decode()
    assert SHOWN_SECRET.search(page)
    # No request is needed, and none is accepted.
    with pytest.raises(account_changes.AccountChangeRefused, match="no privileged role"):
        account_changes.request_account_change(
            user=alice, kind=RequestKind.PASSWORD, by_user=carol, note="forgot it"
        )
    assert not events(EventType.ACCOUNT_CHANGE_REFUSED)


def test_a_request_needs_a_reason(client, carol, bob):
    request_step(client, carol, bob, RequestKind.PASSWORD, note="")
    assert not RoleChangeRequest.objects.exists()
    with pytest.raises(account_changes.AccountChangeRefused, match="reason"):
        account_changes.request_account_change(
            user=bob, kind=RequestKind.PASSWORD, by_user=carol, note="   "
        )


def test_a_rejected_or_expired_request_changes_nothing(client, carol, erika, bob, settings):
    request_step(client, carol, bob, RequestKind.PASSWORD)
    first = RoleChangeRequest.objects.get()
    decide(client, erika, first, "reject")
    first.refresh_from_db()
    assert first.state == RequestState.REJECTED and has_password(bob, PASSWORD)
    [rejected] = events(EventType.ACCOUNT_CHANGE_REJECTED)
    assert rejected.actor_id == erika.pk and rejected.details["kind"] == "password"

    second = account_changes.request_account_change(
        user=bob, kind=RequestKind.SECOND_FACTOR_RESET, by_user=carol, note="new phone"
    )
    later = timezone.now() + timedelta(days=settings.ROLE_REQUEST_DAYS, minutes=1)
    with time_machine.travel(later):
        with pytest.raises(role_changes.RoleChangeRefused, match="expired"):
            account_changes.approve_account_change(change_request=second, by_user=erika)
        assert expire_enrolment_codes_and_role_requests()["role_requests"] == 1
    second.refresh_from_db()
    assert second.state == RequestState.EXPIRED
    assert TOTPDevice.objects.filter(user=bob).exists()
    assert len(events(EventType.ACCOUNT_CHANGE_EXPIRED)) == 1
    assert not events(EventType.ACCOUNT_CHANGE_APPROVED)


def test_a_superuser_too_needs_a_second_administrator_for_a_privileged_account(client, carol):
    root = User.objects.create_superuser("root", "root@bank.example", PASSWORD, is_staff=True)
    TOTPDevice.objects.create(user=root, name="Authenticator", confirmed=True)
    sign_in_verified(client, root)
    set_password(client, carol)
    assert has_password(carol, PASSWORD)
    # And an administrator cannot even ask for a superuser's password.
    sign_in_verified(client, carol)
    assert client.post(f"/admin/auth/user/{root.pk}/account-request/",
                       {"kind": "password", "note": "x"}).status_code == 403
    with pytest.raises(account_changes.AccountChangeRefused, match="superuser"):
        account_changes.request_account_change(
            user=root, kind=RequestKind.PASSWORD, by_user=carol, note="x"
        )


def test_the_user_page_offers_requests_for_a_privileged_account(client, carol, bob, olga):
    sign_in_verified(client, carol)
    page = client.get(f"/admin/auth/user/{bob.pk}/change/").content.decode()
    assert "Request a reset of the second factor" in page
    page = client.get(f"/admin/auth/user/{olga.pk}/change/").content.decode()
    assert "Request an enrolment code" in page
    page = client.get(f"/admin/auth/user/{bob.pk}/password/", follow=True).content.decode()
    assert "a second administrator must approve this step" in page
    assert 'name="note"' in page


def test_the_refusal_and_the_request_speak_german(carol, erika, bob):
    from django.conf import settings
    from django.test import Client

    browser = Client()
    browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "de"
    sign_in_verified(browser, carol)
    page = set_password(browser, bob).content.decode()
    assert "Ein zweiter Administrator muss diesen Schritt genehmigen" in page
    assert "Antrag stellen" in page
    change_request = account_changes.request_account_change(
        user=bob, kind=RequestKind.PASSWORD, by_user=carol, note="vergessen"
    )
    page = decide(browser, erika, change_request).content.decode()
    assert "Geben Sie dieses neue Passwort der Person" in page


def test_the_approver_of_a_grant_sees_what_the_requester_set_up_on_the_account(
    client, carol, erika, alice
):
    # carol could set up a Support staff account for herself and then ask to promote it.
    sign_in_verified(client, carol)
    set_password(client, alice, "a-new-Password-4711")
    change_request = role_changes.request_role_change(
        user=alice, role=ADMINISTRATOR, change="grant", by_user=carol
    )
    sign_in_verified(client, erika)
    page = client.get(f"/admin/portal/rolechangerequest/{change_request.pk}/decide/")
    text = page.content.decode()
    assert "carol set this person's password or second factor" in text
    assert "Password set by an administrator" in text
    other = role_changes.request_role_change(
        user=make_staff("zoe", None), role=ADMINISTRATOR, change="grant", by_user=carol
    )
    page = client.get(f"/admin/portal/rolechangerequest/{other.pk}/decide/")
    assert "set this person" not in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_two_approvals_at_the_same_moment_set_one_password(carol, erika, bob):
    import threading

    from django.db import connection

    frank = make_staff("frank", ADMINISTRATOR)
    change_request = account_changes.request_account_change(
        user=bob, kind=RequestKind.PASSWORD, by_user=carol, note="forgot it"
    )
    go = threading.Barrier(2)
    shown: list[str] = []

    def approve(admin) -> None:
        try:
            go.wait()
            done = account_changes.approve_account_change(
                change_request=RoleChangeRequest.objects.get(pk=change_request.pk), by_user=admin
            )
            shown.append(done.secret)
        except role_changes.RoleChangeRefused:
            shown.append("refused")
        except Exception as error:  # pragma: no cover - shown in the assertion
            shown.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(a,)) for a in (erika, frank)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(shown) == 2 and shown.count("refused") == 1, shown
    [password] = [s for s in shown if s != "refused"]
    assert has_password(bob, password)
    assert len(events(EventType.PASSWORD_SET)) == 1
    assert len(events(EventType.ACCOUNT_CHANGE_APPROVED)) == 1
