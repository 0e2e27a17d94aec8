"""Versioned terms in the admin: drafted and published by administrators, then never changed;
consents and receipts read by compliance officers, every receipt opening audited."""

import hashlib
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from consent import actions
from consent.models import ConsentAcceptance, ConsentImmutableError, TermsVersion
from sessions_app import actions as session_actions
from tests.personas import events, sign_in_verified
from tests.sessions import waiting_customer

pytestmark = pytest.mark.usefixtures("english_messages")
TERMS_DIR = Path(__file__).resolve().parent.parent / "consent/terms"


def test_the_first_terms_ship_published_in_german_and_english(db):
    for language in ("de", "en"):
        terms = TermsVersion.objects.current(language)
        text = (TERMS_DIR / f"1.{language}.txt").read_text(encoding="utf-8")
        assert (terms.version, terms.language, terms.text) == (1, language, text)
        assert terms.sha256 == hashlib.sha256(text.encode()).hexdigest()
        assert terms.is_published


@pytest.mark.parametrize(
    "words",
    [
        ("Geschäftszeiten", "Telefongespräch"), ("sieben Ziffern", "ein einziges Mal"),
        ("Bildschirm",),
        ("Steuerung",), ("verschlüsselt",), ("Arbeitsspeicher",), ("IT-Abteilung",),
        ("jederzeit", "Sitzung beenden"), ("§ 254 BGB",), ("aufgezeichnet", "Datenschutz"),
        ("24 Monate",),
    ],
)
def test_the_german_terms_cover_every_promise(db, words):
    text = TermsVersion.objects.current("de").text
    for word in words:
        assert word in text, word


def test_a_published_version_cannot_be_changed_or_deleted(db):
    terms = TermsVersion.objects.current("de")
    terms.text += "\nOne more sentence."
    with pytest.raises(ConsentImmutableError):
        terms.save()
    with pytest.raises(ConsentImmutableError):
        terms.delete()
    terms.refresh_from_db()
    assert terms.sha256 == hashlib.sha256(terms.text.encode()).hexdigest()


def test_an_administrator_drafts_previews_and_publishes(english, carol):
    client = english
    sign_in_verified(client, carol)
    client.post(reverse("admin:consent_termsversion_add"),
                {"version": 2, "language": "de",
                 "text": "Bedingungen v2\n\nNeuer Text. Aufbewahrung: {retention}."})
    draft = TermsVersion.objects.get(version=2)
    assert not draft.is_published
    assert TermsVersion.objects.current("de").version == 1
    preview = client.get(reverse("admin:consent_termsversion_publish", args=[draft.pk]))
    # Shown as it will be published: with the configured retention, and that text's hash.
    assert "Aufbewahrung: 24 Monate." in preview.text
    assert draft.with_retention("24m").sha256 in preview.text
    assert "Publish this version" in preview.text
    client.post(reverse("admin:consent_termsversion_publish", args=[draft.pk]))
    draft.refresh_from_db()
    assert draft.is_published and draft.published_by == carol
    assert TermsVersion.objects.current("de") == draft
    [published] = events("terms.published")
    assert published.details == {"version": 2, "language": "de", "sha256": draft.sha256,
                                 "recording_retention": "24m"}
    # Published: the change page is read-only, and a forged post changes nothing.
    client.post(reverse("admin:consent_termsversion_change", args=[draft.pk]),
                {"version": 2, "language": "de", "text": "Heimlich geändert"})
    draft.refresh_from_db()
    assert draft.text == "Bedingungen v2\n\nNeuer Text. Aufbewahrung: 24 Monate."


def test_publishing_twice_is_refused(carol):
    draft = TermsVersion.objects.create(version=3, language="en", text="T\n\nx {retention}")
    actions.publish_terms(terms=draft, by_user=carol)
    with pytest.raises(actions.ConsentRefused):
        actions.publish_terms(terms=draft, by_user=carol)
    assert len(events("terms.published")) == 1


def test_a_compliance_officer_cannot_publish(client, bob):
    draft = TermsVersion.objects.create(version=2, language="en", text="T\n\nx")
    sign_in_verified(client, bob)
    url = reverse("admin:consent_termsversion_publish", args=[draft.pk])
    assert client.get(url).status_code == 200
    assert client.post(url).status_code == 403
    draft.refresh_from_db()
    assert not draft.is_published


def test_support_staff_cannot_reach_the_terms_admin(client, alice):
    sign_in_verified(client, alice)
    assert client.get(reverse("admin:consent_termsversion_changelist")).status_code in (302, 403)


def _consented(alice):
    session = waiting_customer(alice)
    terms = TermsVersion.objects.current("de")
    actions.give_consent(
        session=session, terms_id=terms.pk, language="de",
        answers=actions.Answers(True, True, True, False), ip="203.0.113.5",
    )
    return ConsentAcceptance.objects.get(session=session)


def test_a_compliance_officer_opens_a_receipt_and_it_is_audited(client, bob, alice, office_open):
    consent = _consented(alice)
    sign_in_verified(client, bob)
    listing = client.get(reverse("admin:consent_consentacceptance_changelist")).text
    assert consent.session.reference in listing
    page = client.get(reverse("admin:consent_consentacceptance_receipt", args=[consent.pk])).text
    assert consent.terms_sha256 in page and consent.session.reference in page
    [viewed] = events("consent.receipt_viewed")
    assert viewed.actor_label == "bob" and viewed.session_ref == consent.session.reference


def test_an_administrator_reads_no_consents(client, carol, alice, office_open):
    consent = _consented(alice)
    sign_in_verified(client, carol)
    url = reverse("admin:consent_consentacceptance_receipt", args=[consent.pk])
    assert client.get(url).status_code == 403
    assert not events("consent.receipt_viewed")


def test_consent_records_cannot_be_changed(alice, office_open):
    consent = _consented(alice)
    with pytest.raises(ConsentImmutableError):
        consent.save()
    with pytest.raises(ConsentImmutableError):
        ConsentAcceptance.objects.filter(pk=consent.pk).update(full_control=True)
    with pytest.raises(ConsentImmutableError):
        consent.delete()


def test_a_failed_consent_leaves_no_row(alice, office_open):
    session = waiting_customer(alice)
    terms = TermsVersion.objects.current("de")
    with pytest.raises(actions.ConsentRefused):
        actions.give_consent(session=session, terms_id=terms.pk, language="de",
                             answers=actions.Answers(True, False, True, True), ip=None)
    session_actions.end_session(session=session, reason="staff_ended",
                                by=session_actions.Actor.staff(alice))
    with pytest.raises(actions.ConsentRefused):
        actions.give_consent(session=session, terms_id=terms.pk, language="de",
                             answers=actions.Answers(True, True, True, True), ip=None)
    assert not ConsentAcceptance.objects.exists()


@pytest.mark.parametrize("unticked", ["accepted_terms", "it_permission", "share_screen"])
def test_the_database_itself_refuses_a_consent_without_the_three_boxes(
    alice, office_open, unticked
):
    session = waiting_customer(alice)
    terms = TermsVersion.objects.current("de")
    answers = {"accepted_terms": True, "it_permission": True, "share_screen": True}

    def store(**boxes):
        return ConsentAcceptance.objects.create(
            session=session, terms=terms, terms_sha256=terms.sha256, language="de",
            customer_name="x", full_control=False, accepted_at=session.created_at, **boxes,
        )

    # Written past the action, straight to the table: the check constraint refuses it.
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        store(**answers | {unticked: False})
    assert "consent_needs_terms_it_and_sharing" in str(refused.value)
    assert not ConsentAcceptance.objects.exists()
    # The same row with all three boxes ticked is stored: nothing else was wrong with it.
    assert store(**answers).share_screen


def test_the_session_in_the_admin_links_to_its_receipt(english, bob, alice, office_open):
    consent = _consented(alice)
    sign_in_verified(english, bob)
    page = english.get(reverse("admin:sessions_app_supportsession_change",
                               args=[consent.session.pk])).text
    assert reverse("admin:consent_consentacceptance_receipt", args=[consent.pk]) in page
