"""The recording retention the terms promise: stated in the text, checked at start, and kept.

Terms version 1 promises 24 months; publishing fills ``{retention}`` from
PORTAL_RECORDING_RETENTION; daphne refuses to start while the current terms say otherwise; each
recording is kept as long as the version its customer accepted says.
"""

import hashlib
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from consent import actions
from consent.models import TermsVersion
from recordings.retention import add_months
from tests.personas import SUPPORT_STAFF, make_staff
from tests.processes import child_env, free_port, start, stop, wait_until
from tests.recordings import write_recording
from tests.sessions import waiting_customer

pytestmark = pytest.mark.usefixtures("english_messages")
TERMS_DIR = Path(__file__).resolve().parent.parent / "consent/terms"
DRAFT = "Bedingungen v2\n\nWir bewahren die Aufzeichnungen {retention} nach der Sitzung auf."


def shipped_terms() -> list[TermsVersion]:
    """Version 1 as the migrations leave it (a transactional test may have flushed it)."""
    versions = []
    for language in ("de", "en"):
        text = (TERMS_DIR / f"1.{language}.txt").read_text(encoding="utf-8")
        terms, _ = TermsVersion.objects.get_or_create(
            version=1, language=language,
            defaults={"text": text, "published_at": timezone.now(), "recording_retention": "24m"},
        )
        versions.append(terms)
    return versions


def test_version_1_promises_what_the_default_keeps(db):
    for terms in shipped_terms():
        assert terms.recording_retention == "24m"
        # Its text and hash are the ones receipts cite: unchanged.
        assert terms.sha256 == hashlib.sha256(terms.text.encode()).hexdigest()
        assert "24 Monate" in terms.text or "24 months" in terms.text
    assert actions.configured_retention() == "24m"


def test_publishing_states_the_configured_retention(db, carol, settings):
    settings.RECORDING_RETENTION = {"standard": (10, "years"), "complaint": (30, "years")}
    draft = TermsVersion.objects.create(version=2, language="de", text=DRAFT)
    actions.publish_terms(terms=draft, by_user=carol)
    draft.refresh_from_db()
    assert draft.text.endswith("Wir bewahren die Aufzeichnungen 10 Jahre nach der Sitzung auf.")
    assert draft.sha256 == hashlib.sha256(draft.text.encode()).hexdigest()
    assert draft.recording_retention == "10y"


def test_a_text_that_does_not_state_the_retention_is_not_published(db, carol):
    draft = TermsVersion.objects.create(version=2, language="en", text="Terms v2\n\nKept long.")
    with pytest.raises(actions.ConsentRefused, match=r"\{retention\}"):
        actions.publish_terms(terms=draft, by_user=carol)
    draft.refresh_from_db()
    assert not draft.is_published


def test_the_publish_command_publishes_every_language(db, carol, settings):
    settings.RECORDING_RETENTION = {"standard": (36, "months")}
    for language in ("de", "en"):
        TermsVersion.objects.create(version=2, language=language, text=DRAFT)
    call_command("publish_terms", "2", "--by", "carol")
    assert set(TermsVersion.objects.filter(version=2).values_list(
        "recording_retention", "published_by__username")) == {("36m", "carol")}
    assert "36 Monate" in TermsVersion.objects.get(version=2, language="de").text


def consented_session(user, language: str):
    session = waiting_customer(user)
    actions.give_consent(
        session=session, terms_id=TermsVersion.objects.current(language).pk, language=language,
        answers=actions.Answers(True, True, True, False), ip="203.0.113.5",
    )
    return session


def test_a_recording_is_kept_as_long_as_its_customer_s_terms_say(alice, carol, settings,
                                                                   office_open):
    shipped_terms()
    settings.RECORDING_RETENTION = {"standard": (10, "years")}
    accepted_v1 = write_recording(consented_session(alice, "de"), end=False)
    assert accepted_v1.retention_until == add_months(accepted_v1.started_at, 24)

    draft = TermsVersion.objects.create(version=2, language="de", text=DRAFT)
    actions.publish_terms(terms=draft, by_user=carol)
    colleague = make_staff("erik", SUPPORT_STAFF)  # alice's slot is taken by the first session
    accepted_v2 = write_recording(consented_session(colleague, "de"), end=False)
    assert accepted_v2.retention_until == add_months(accepted_v2.started_at, 120)


def test_daphne_refuses_to_start_while_the_terms_promise_another_retention(transactional_db,
                                                                           tmp_path):
    shipped_terms()
    log = tmp_path / "daphne.log"
    env = child_env(PORTAL_RECORDING_RETENTION="standard=10y")
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    process = start(["-m", "daphne", "-b", "127.0.0.1", "-p", str(free_port()),
                     "portal.asgi:application"], env, log)
    try:
        wait_until(lambda: process.poll() is not None, timeout=60, what="daphne to refuse",
                   log=log)
    finally:
        stop(process)
    assert process.returncode != 0
    output = log.read_text()
    assert "consent.E001" in output and "PORTAL_RECORDING_RETENTION" in output
    assert "24m" in output and "10y" in output
