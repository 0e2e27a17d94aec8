"""The whole story of a recording, as the issue's "done when" tells it: a live session in two
browsers is recorded; once it ends a real Celery worker archives it encrypted and verified;
a compliance officer plays it in the admin and jumps to a chat line; verify_recording passes.

One daphne process and one Celery worker, both writing and reading this test's recording and
archive folders.
"""

import re
import subprocess
import sys
from datetime import time as clock
from pathlib import Path

import pytest
from playwright.sync_api import expect

from audit.event_types import EventType
from recordings.models import Recording, RecordingState
from tests.browser import axe_violations, in_sync_thread, wait_for
from tests.personas import PERSONAS, events, make_staff
from tests.processes import ROOT, celery_worker, child_env, stop, wait_until
from tests.test_browser_customer import keyed_session, shipped_terms
from tests.test_browser_live import admitted_customer, staff_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ALWAYS_OPEN = "mon-sun 00:00-23:59:59"
QUESTION = "Guten Tag, bei der Überweisung erscheint Fehler 4711."


def recorded_screens(recording) -> set[tuple[int, int]]:
    """The shared screen's sizes, from the keyframes in the archive."""
    from recordings import archive
    from recordings import format as fmt
    from sessions_app import protocol

    reader = fmt.RecordingReader(archive.ArchiveSource(recording), manifest=recording.manifest)
    tiles = [protocol.parse_tile(r.payload) for r in reader.records()
             if r.type == fmt.RECORD_KEYFRAME]
    return {(tile.screen_w, tile.screen_h) for tile in tiles}


@pytest.fixture
def recording_portal(request, monkeypatch, settings, tmp_path):
    """Daphne and a Celery worker on this test's recording and archive folders."""
    monkeypatch.setenv("PORTAL_OPENING_HOURS", ALWAYS_OPEN)
    monkeypatch.setenv("PORTAL_HOLIDAY_STATE", "none")
    monkeypatch.setenv("PORTAL_RECORDINGS_DIR", str(settings.RECORDINGS_DIR))
    monkeypatch.setenv("PORTAL_ARCHIVE_DIR",
                       str(settings.STORAGES["recordings"]["OPTIONS"]["location"]))
    settings.OPENING_HOURS = {day: (clock(0, 0), clock(23, 59, 59)) for day in range(7)}
    settings.HOLIDAY_STATE = "none"
    shipped_terms()
    portal = request.getfixturevalue("live_portal")
    log = tmp_path / "worker.log"
    worker = celery_worker(f"browser-{tmp_path.name}", child_env(), log)
    try:
        yield portal, log
    finally:
        stop(worker)


def test_a_live_session_is_recorded_archived_played_back_and_verified(
    recording_portal, browser, page, alice, settings
):
    portal, worker_log = recording_portal
    bob = make_staff("bob", PERSONAS["bob"])
    session, key = in_sync_thread(keyed_session, alice)

    # The live session: the customer shares this tab and asks a question; the adviser watches.
    admitted_customer(page, portal, session, key, alice)
    page.locator("#share-start").click()
    expect(page.locator("#share")).to_have_attribute("data-state", "sharing")
    staff = staff_page(browser, portal, alice)
    staff.goto(portal(f"/staff/sessions/{session.reference}/live"))
    live = staff.locator("#live")
    expect(live).to_have_attribute("data-customer", "sharing")
    wait_for(staff, "document.getElementById('screen').width > 0")
    page.locator("#chat-text").fill(QUESTION)
    page.locator("#chat-text").press("Enter")
    expect(staff.locator("#chat-lines")).to_contain_text(QUESTION)
    page.wait_for_timeout(1500)  # a little more screen after the question
    page.locator("#share-end").click()
    expect(live).to_have_attribute("data-connection", "ended")

    # The worker archives it: encrypted, verified by reading back, the working copy gone.
    recording = wait_until(
        lambda: Recording.objects.filter(session=session, state=RecordingState.ARCHIVED).first(),
        timeout=90, what="the worker to archive the recording", log=worker_log,
    )
    assert recording.ended_cleanly and recording.counts["keyframe"] >= 1
    assert any(e["kind"] == "chat" and e["text"] == QUESTION for e in recording.timeline)
    assert not recording.working_path.exists()
    archive_root = Path(settings.STORAGES["recordings"]["OPTIONS"]["location"])
    stored = list((archive_root / recording.storage_prefix).glob("*.zst.aes"))
    assert stored and all(b"JFIF" not in blob.read_bytes() for blob in stored)

    # A compliance officer plays it in the admin and jumps to the customer's question.
    reviewer = staff_page(browser, portal, bob)
    reviewer.goto(portal(f"/admin/recordings/recording/{recording.pk}/play/"))
    player = reviewer.locator("#player")
    expect(player).to_have_attribute("data-state", "paused")
    wait_for(reviewer, "document.getElementById('player-canvas').width > 0")
    expect(reviewer.locator("#player-canvas")).to_have_attribute(
        "data-watermark", re.compile(r"^bob · "))
    entry = reviewer.locator(".timeline-entry", has_text=QUESTION)
    entry.click()
    asked_at = next(e["at_us"] for e in recording.timeline if e.get("text") == QUESTION)
    wait_for(reviewer,
        f"Number(document.getElementById('player').dataset.positionUs) >= {asked_at}"
    )
    # The picture at that moment is the customer's shared tab: its size, and not blank.
    [(width, height)] = recorded_screens(recording)
    wait_for(reviewer,  # the keyframe is decoded and drawn a moment after the jump
        f"document.getElementById('player-canvas').width === {width} &&"
        f" document.getElementById('player-canvas').height === {height}"
    )
    assert reviewer.evaluate("""() => {
        const c = document.getElementById('player-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lit = 0;
        for (let i = 0; i < d.length; i += 4 * 13) if (d[i] + d[i + 1] + d[i + 2] > 300) lit++;
        return lit / (d.length / (4 * 13));
    }""") > 0.5  # the portal's light page, not an empty (black) canvas
    assert axe_violations(reviewer) == []
    assert [e.actor_label for e in events(EventType.RECORDING_VIEWED)] == ["bob"]

    # verify_recording proves it intact, in a process of its own.
    result = subprocess.run([sys.executable, "manage.py", "verify_recording", str(recording.pk)],
                            cwd=ROOT, env=child_env(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "intact" in result.stdout
