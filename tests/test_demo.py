"""manage.py demo: one user per role, idempotent, and only in debug mode."""

import base64
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.event_types import EventType
from audit.models import AuditEvent
from portal import enrolment
from portal.models import EnrolmentCode

ENROLMENT_CODE = re.compile(r"enrolment code ([a-z2-7]{4}(?:-[a-z2-7]{4}){3})")


@pytest.fixture
def debug_on(settings, tmp_path):
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path


def test_it_creates_one_user_per_role_and_prints_how_to_sign_in(db, debug_on, capsys):
    call_command("demo")
    out = capsys.readouterr().out
    for username in ("support", "compliance", "admin", "neu"):
        user = User.objects.get(username=username)
        assert user.is_staff and user.groups.count() == 1
        assert username in out
    device = TOTPDevice.objects.get(user__username="support")
    assert base64.b32encode(device.bin_key).decode() in out
    assert not TOTPDevice.objects.filter(user__username="neu").exists()  # enrols with a code
    [printed] = ENROLMENT_CODE.findall(out)
    [stored] = EnrolmentCode.usable().filter(user__username="neu")
    assert stored.code_sha256 == enrolment.code_digest(printed)
    assert printed.replace("-", "") not in str(stored.__dict__)
    assert AuditEvent.objects.filter(event_type=EventType.DEMO_DATA_CREATED).count() == 1


def test_it_leaves_an_archived_recording_to_play_back(db, debug_on, settings, tmp_path):
    from recordings import archive
    from recordings.models import Recording, RecordingState

    settings.RECORDINGS_DIR = tmp_path / "recordings"
    call_command("demo")
    call_command("demo")
    [recording] = Recording.objects.all()
    assert recording.state == RecordingState.ARCHIVED
    assert [e["kind"] for e in recording.timeline].count("chat") == 2
    assert archive.verify_stored(recording).intact


def test_running_it_twice_changes_nothing(db, debug_on, capsys):
    call_command("demo")
    first = capsys.readouterr().out
    call_command("demo")
    second = capsys.readouterr().out
    # The same users and secrets; only neu's enrolment code is new, and the old one is void.
    assert ENROLMENT_CODE.sub("", first.replace(" (new)", "")) == ENROLMENT_CODE.sub("", second)
    assert ENROLMENT_CODE.findall(first) != ENROLMENT_CODE.findall(second)
    [usable] = EnrolmentCode.usable()
    assert usable.code_sha256 == enrolment.code_digest(ENROLMENT_CODE.findall(second)[0])
    assert User.objects.count() == 4 and TOTPDevice.objects.count() == 3
    assert AuditEvent.objects.filter(event_type=EventType.DEMO_DATA_CREATED).count() == 1
    assert AuditEvent.objects.filter(event_type=EventType.ENROLMENT_STARTED).count() == 2


def test_it_refuses_with_debug_off(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="debug off"):
        call_command("demo")
    assert not User.objects.exists()


def test_neu_enrols_with_the_printed_code_and_the_password(db, debug_on, capsys, settings):
    import json

    from django.test import Client

    call_command("demo")
    [code] = ENROLMENT_CODE.findall(capsys.readouterr().out)
    password = json.loads((settings.VAR_DIR / "demo-credentials.json").read_text())["neu"]
    browser = Client()
    browser.post("/staff/login/", {"username": "neu", "password": password})
    assert "<svg" not in browser.get("/staff/enrol/").content.decode()
    page = browser.post("/staff/enrol/", {"enrolment_code": code}, follow=True).content.decode()
    assert '<div class="qr"' in page
    [used] = AuditEvent.objects.filter(event_type=EventType.ENROLMENT_CODE_USED)
    assert used.actor_label == "neu"
