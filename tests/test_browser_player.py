"""The recording player in a real browser: a compliance officer signs in with password and code,
opens a recording in the admin, plays it, jumps to a chat line, and is watched doing so.

The recording is the test recording of ``tests/recordings.py`` (red keyframe at 0 s, green
keyframes every 10 s, blue tiles at (64, 64) every second, a chat line at 12 s), archived in
this process into a folder the daphne process reads too.
"""

import re
from datetime import time as clock
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from audit.event_types import EventType
from sessions_app import actions
from tests.browser import axe_violations, in_sync_thread, live_password, wait_for
from tests.personas import events, totp_code, totp_device
from tests.recordings import archived_recording
from tests.sessions import wait_for_a_whole_slot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ALWAYS_OPEN = "mon-sun 00:00-23:59:59"
SCREENSHOT = "/tmp/player.png"
PIXEL = """([x, y]) => Array.from(
    document.getElementById('player-canvas').getContext('2d').getImageData(x, y, 1, 1).data)"""
# Pixels of the red start picture, outside the blue tile, lifted in green by the watermark.
WATERMARKED = """() => {
    const canvas = document.getElementById('player-canvas');
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let lifted = 0;
    for (let i = 0; i < data.length; i += 4) {
        const p = i / 4, x = p % canvas.width, y = Math.floor(p / canvas.width);
        if (x >= 60 && x < 132 && y >= 60 && y < 132) continue;
        if (data[i + 1] > 70) lifted += 1;
    }
    return lifted;
}"""


@pytest.fixture
def archive_portal(request, monkeypatch, settings):
    """The portal open all day, its daphne process reading this test's archive folder."""
    monkeypatch.setenv("PORTAL_OPENING_HOURS", ALWAYS_OPEN)
    monkeypatch.setenv("PORTAL_HOLIDAY_STATE", "none")
    monkeypatch.setenv("PORTAL_ARCHIVE_DIR",
                       str(settings.STORAGES["recordings"]["OPTIONS"]["location"]))
    settings.OPENING_HOURS = {day: (clock(0, 0), clock(23, 59, 59)) for day in range(7)}
    settings.HOLIDAY_STATE = "none"
    return request.getfixturevalue("live_portal")


def a_recording(adviser):
    minutes = wait_for_a_whole_slot()
    now = timezone.now()
    session = actions.schedule_session(
        by_user=adviser, customer_name="Muster GmbH", call_note="Call, ticket 4711",
        slot_start=now, slot_end=now + timedelta(minutes=minutes),
    )
    # Segments of 10 s, so that playing on fetches the next one and a jump another.
    return archived_recording(session, max_segment_us=10_000_000)


# As on a busy machine: every picture takes 1.5 s to decode (an init script runs before the
# page's own scripts, and the Content-Security-Policy does not apply to it).
SLOW_DECODING = """(() => {
    const decode = window.createImageBitmap.bind(window);
    window.createImageBitmap = (...args) =>
        new Promise(resolve => setTimeout(resolve, 1500)).then(() => decode(...args));
})()"""


def sign_in(page, portal, path, user):
    """Open ``path`` as ``user``: the admin sends them to the two-step staff sign-in and back."""
    password = live_password(user)
    page.goto(portal(path))
    page.get_by_label("Benutzername").fill(user.username)
    page.get_by_label("Passwort").fill(password)
    page.get_by_role("button", name="Weiter").click()
    expect(page).to_have_url(re.compile(r"/staff/login/code/"))
    page.get_by_role("textbox").fill(totp_code(totp_device(user)))
    page.get_by_role("button", name="Anmelden").click()
    expect(page).to_have_url(portal(path))


def colour(page, x, y):
    red, green, blue, _alpha = page.evaluate(PIXEL, [x, y])
    return {max((red, "red"), (green, "green"), (blue, "blue"))[1]: (red, green, blue)}


def wait_for_colour(page, x, y, name):
    wait_for(page,
        f"""() => {{
            const [r, g, b] = ({PIXEL})([{x}, {y}]);
            const c = {{red: r, green: g, blue: b}}[{name!r}];
            return c > 120 && [r, g, b].every(v => v === c || v < c - 40);
        }}"""
    )
    assert name in colour(page, x, y)


def test_a_compliance_officer_plays_a_recording_and_jumps_to_the_chat(
    archive_portal, page, alice, bob
):
    recording = in_sync_thread(a_recording, alice)

    # Signing in for real: the admin sends bob to the two-step staff sign-in and back.
    sign_in(page, archive_portal, f"/admin/recordings/recording/{recording.pk}/change/", bob)
    expect(page.get_by_text(recording.manifest_sha256)).to_be_visible()
    assert axe_violations(page) == []

    page.locator("#play-link").click()
    expect(page).to_have_url(archive_portal(f"/admin/recordings/recording/{recording.pk}/play/"))
    player = page.locator("#player")
    expect(player).to_have_attribute("data-state", "paused")  # the first picture is there
    canvas = page.locator("#player-canvas")
    assert page.evaluate("document.getElementById('player-canvas').width") == 320
    wait_for_colour(page, 10, 10, "red")

    # The watermark: the reviewer and the time, in the page and drawn into the picture.
    expect(canvas).to_have_attribute("data-watermark", re.compile(r"^bob · .*\d\d:\d\d:\d\d"))
    expect(page.locator("#player-watermark")).to_have_text(re.compile(r"^bob · "))
    assert page.evaluate(WATERMARKED) > 200
    first_stamp = canvas.get_attribute("data-watermark")
    wait_for(page,
        f"document.getElementById('player-canvas').dataset.watermark !== {first_stamp!r}"
    )  # it runs with the clock

    page.locator("#player-play").click()
    expect(player).to_have_attribute("data-state", "playing")
    wait_for(page, "Number(document.getElementById('player').dataset.positionUs) > 300000")
    assert "red" in colour(page, 10, 10)

    # A click on the chat line jumps there: the green keyframe at 10 s, the blue tile on it.
    entry = page.locator(".timeline-entry", has_text="Bitte klicken Sie auf Überweisung.")
    expect(entry).to_contain_text("0:12")
    entry.click()
    wait_for(page,
        "(() => { const p = Number(document.getElementById('player').dataset.positionUs);"
        " return p >= 12000000 && p < 16000000; })()"
    )
    expect(page.locator("#player-time")).to_have_text(re.compile(r"^0:1[2-5]$"))
    wait_for_colour(page, 10, 10, "green")
    wait_for_colour(page, 80, 80, "blue")
    expect(player).to_have_attribute("data-state", "playing")  # and it plays on
    page.screenshot(path=SCREENSHOT, full_page=True)

    # At 8× it plays through the next segments (fetched in order: no further jump) to the end.
    page.locator("#player-speed").select_option("8")
    expect(player).to_have_attribute("data-speed", "8")
    expect(player).to_have_attribute("data-state", "ended")
    expect(page.locator("#player-time")).to_have_text("0:31")
    wait_for_colour(page, 80, 80, "green")  # the last keyframe, at 30 s, covers the tile
    assert axe_violations(page) == []

    [viewed] = events(EventType.RECORDING_VIEWED)
    assert viewed.actor_label == "bob"
    assert viewed.details["recording"] == recording.pk
    seeks = events(EventType.RECORDING_SEEKED)
    assert [e.details["to_us"] for e in seeks] == [12_000_001]
    assert seeks[0].details["to_segment"] == 1
    assert seeks[0].actor_label == "bob"


def test_the_player_says_paused_only_once_its_first_picture_is_drawn(
    archive_portal, page, alice, bob
):
    # It once said "paused" while the first picture was still decoding, on the empty canvas.
    page.add_init_script(SLOW_DECODING)
    recording = in_sync_thread(a_recording, alice)

    sign_in(page, archive_portal, f"/admin/recordings/recording/{recording.pk}/play/", bob)
    expect(page.locator("#player")).to_have_attribute("data-state", "paused")
    assert page.evaluate("document.getElementById('player-canvas').width") == 320
    assert "red" in colour(page, 10, 10)
    expect(page.locator("#player-play")).to_be_enabled()
