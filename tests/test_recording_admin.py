"""Recordings in the admin: who may list, play, stream, export, download and hold them, and
that every view, jump, export request, download and legal hold is audited."""

import hashlib

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from audit.event_types import EventType
from recordings import archive, playback
from recordings.models import ExportState, Recording, RecordingExport, RecordingState
from tests.personas import events, sign_in_verified
from tests.recordings import archived_recording, write_recording
from tests.sessions import schedule

pytestmark = pytest.mark.usefixtures("office_open")

LIST = "/admin/recordings/recording/"
EXPORTS = "/admin/recordings/recordingexport/"


@pytest.fixture
def recording(alice):
    # Segments of 10 s: four of them, so that playing in order and jumping can be told apart.
    return archived_recording(schedule(alice), max_segment_us=10_000_000)


def url(recording, rest=""):
    return f"{LIST}{recording.pk}/{rest}"


def segment(recording, number):
    return url(recording, f"segment/{number}/")


def finished_export(recording, by_user, content=b"\x00\x00\x00\x18ftypmp42 not really a film"):
    export = RecordingExport.objects.create(recording=recording, requested_by=by_user,
                                            reason="Complaint 2026-117 by the customer")
    name = archive.storage().save(f"exports/test/export-{export.pk}.mp4", ContentFile(content))
    RecordingExport.objects.filter(pk=export.pk).update(
        state=ExportState.DONE, progress=100, finished_at=timezone.now(), storage_name=name,
        sha256=hashlib.sha256(content).hexdigest(), size_bytes=len(content),
    )
    export.refresh_from_db()
    return export


# --- Who may do what --------------------------------------------------------------------------


def test_support_staff_and_administrators_get_no_recordings(client, english, recording, alice,
                                                             carol, bob):
    export = finished_export(recording, bob)
    for user in (alice, carol):
        sign_in_verified(client, user)
        for path in (LIST, url(recording, "change/"), url(recording, "play/"),
                     segment(recording, 0), url(recording, f"export/{export.pk}/download/"),
                     EXPORTS):
            assert client.get(path).status_code == 403, (user, path)
        assert client.post(url(recording, "export/"),
                           {"export-reason": "Just curious about this one"}).status_code == 403
        assert client.post(url(recording, "legal-hold/"),
                           {"hold-hold": "1", "hold-reason": "Case 4711"}).status_code == 403
    assert not events(EventType.RECORDING_VIEWED)
    assert not events(EventType.RECORDING_EXPORT_DOWNLOADED)
    assert not events(EventType.RECORDING_EXPORT_REQUESTED)
    assert not events(EventType.RECORDING_LEGAL_HOLD_SET)
    assert RecordingExport.objects.count() == 1
    # The refused attempts on the recording itself are in the audit trail, with who tried.
    refused = [e for e in events(EventType.ACCESS_DENIED) if e.details.get("recording")]
    assert {e.actor_label for e in refused} == {"alice", "carol"}
    assert {e.details["permission"] for e in refused} == {"portal.watch_recordings",
                                                          "recordings.set_legal_hold"}
    assert all(e.session_ref == recording.session.reference for e in refused)


def test_without_the_second_factor_nothing_is_served(client, recording, bob):
    client.force_login(bob)  # password only
    for path in (url(recording, "play/"), segment(recording, 0)):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    assert not events(EventType.RECORDING_VIEWED)


def test_a_compliance_officer_lists_and_reads_a_recording(client, english, recording, bob):
    sign_in_verified(client, bob)
    listing = client.get(LIST)
    assert listing.status_code == 200
    assert recording.session.reference in listing.content.decode()
    found = client.get(LIST, {"q": recording.session.reference})
    assert found.context["cl"].result_count == 1
    page = client.get(url(recording, "change/"))
    assert page.status_code == 200
    html = page.content.decode()
    assert recording.manifest_sha256 in html
    assert recording.signing_key_id in html
    assert recording.wrapped_key not in html  # no key material, not even wrapped
    assert url(recording, "play/") in html
    assert 'name="export-reason"' in html
    assert 'name="hold-reason"' in html
    # Read-only evidence.
    assert client.post(url(recording, "change/"), {"legal_hold": "on"}).status_code == 403
    assert client.post(url(recording, "delete/"), {"post": "yes"}).status_code == 403
    assert Recording.objects.filter(pk=recording.pk, legal_hold=False).exists()


def test_the_session_page_links_to_its_recordings(client, english, recording, bob):
    sign_in_verified(client, bob)
    page = client.get(f"/admin/sessions_app/supportsession/{recording.session.pk}/change/")
    assert page.status_code == 200
    assert url(recording, "change/") in page.content.decode()


def test_unknown_recordings_and_segments_are_404(client, recording, bob):
    sign_in_verified(client, bob)
    for path in (f"{LIST}999999/play/", f"{LIST}999999/segment/0/",
                 segment(recording, recording.segment_count),
                 url(recording, "export/999999/download/")):
        assert client.get(path).status_code == 404, path


# --- Playing ----------------------------------------------------------------------------------


def test_every_opening_of_the_player_is_audited(client, english, recording, bob):
    sign_in_verified(client, bob)
    for _ in range(2):
        page = client.get(url(recording, "play/"))
        assert page.status_code == 200
    html = page.content.decode()
    assert 'id="player-canvas"' in html and 'id="player-index"' in html
    assert "Bitte klicken Sie auf Überweisung." in html  # the chat line beside the picture
    assert "Customer granted full control" in html
    assert page.context["index"]["duration_us"] == 31_000_000
    assert len(page.context["index"]["segments"]) == 4
    assert page.context["texts"]["viewer"] == "bob"
    viewed = events(EventType.RECORDING_VIEWED)
    assert len(viewed) == 2
    assert {e.actor_label for e in viewed} == {"bob"}
    assert viewed[0].details["recording"] == recording.pk
    assert viewed[0].session_ref == recording.session.reference
    # The recording's page says who watched it.
    change = client.get(url(recording, "change/")).content.decode()
    assert change.count('data-event="recording.viewed"') == 2


def test_a_recording_not_yet_archived_cannot_be_played(client, english, alice, bob):
    recording = write_recording(schedule(alice))
    sign_in_verified(client, bob)
    page = client.get(url(recording, "play/"))
    assert page.status_code == 200
    assert "only archived recordings can be played" in page.content.decode()
    assert 'id="player-canvas"' not in page.content.decode()
    assert client.get(segment(recording, 0)).status_code == 409
    assert not events(EventType.RECORDING_VIEWED)


def test_a_segment_is_exactly_the_decrypted_segment_and_not_kept(client, recording, bob):
    sign_in_verified(client, bob)
    client.get(url(recording, "play/"))
    source = archive.ArchiveSource(recording)
    for number, entry in enumerate(recording.manifest["segments"]):
        response = client.get(segment(recording, number))
        assert response.status_code == 200
        assert response["Content-Type"] == "application/octet-stream"
        assert "no-store" in response["Cache-Control"]
        assert response.content == source.read(entry["name"])
        assert hashlib.sha256(response.content).hexdigest() == entry["sha256"]


def test_playing_in_order_is_no_seek_but_a_jump_is(client, recording, bob):
    sign_in_verified(client, bob)
    client.get(url(recording, "play/"))
    for number in range(recording.segment_count):
        client.get(segment(recording, number))
    assert not events(EventType.RECORDING_SEEKED)

    # Opening the player again starts over at segment 0: still no jump.
    client.get(url(recording, "play/"))
    client.get(segment(recording, 0))
    assert not events(EventType.RECORDING_SEEKED)

    client.get(segment(recording, 2))  # skipped segment 1
    [seeked] = events(EventType.RECORDING_SEEKED)
    assert seeked.actor_label == "bob"
    assert seeked.session_ref == recording.session.reference
    assert seeked.details["recording"] == recording.pk
    assert seeked.details["from_segment"] == 0
    assert seeked.details["to_segment"] == 2
    assert seeked.details["to_us"] == 20_000_000


def test_a_jump_asked_for_with_seek_is_audited_with_from_and_to(client, recording, bob,
                                                                 office_open):
    sign_in_verified(client, bob)
    client.get(url(recording, "play/"))
    client.get(segment(recording, 0))
    # The player jumps within the segment it already has: ?seek= says so.
    response = client.get(segment(recording, 0), {"seek": "5000000", "from": "1200000"})
    assert response.status_code == 200
    [seeked] = events(EventType.RECORDING_SEEKED)
    assert (seeked.details["from_us"], seeked.details["to_us"]) == (1_200_000, 5_000_000)
    # The next segment after the jump is in order again.
    office_open.shift(playback.SEEK_BURST_SECONDS + 1)
    client.get(segment(recording, 1))
    assert len(events(EventType.RECORDING_SEEKED)) == 1


def test_a_burst_of_jumps_is_audited_once(client, recording, bob, office_open):
    sign_in_verified(client, bob)
    client.get(url(recording, "play/"))
    for at_us in (3_000_000, 15_000_000, 27_000_000, 8_000_000, 30_500_000):
        number = at_us // 10_000_000
        assert client.get(segment(recording, number), {"seek": at_us}).status_code == 200
    [seeked] = events(EventType.RECORDING_SEEKED)
    assert seeked.details["to_us"] == 3_000_000

    # After a quiet spell the next jump starts a new burst.
    office_open.shift(playback.SEEK_BURST_SECONDS + 1)
    client.get(segment(recording, 1), {"seek": 12_000_001})
    assert [e.details["to_us"] for e in events(EventType.RECORDING_SEEKED)] == [
        3_000_000, 12_000_001]


def test_a_position_outside_the_recording_is_refused(client, recording, bob):
    sign_in_verified(client, bob)
    for bad in ("soon", "-1", str(recording.duration_us + 1)):
        assert client.get(segment(recording, 0), {"seek": bad}).status_code == 400
    assert not events(EventType.RECORDING_SEEKED)


def test_a_changed_segment_is_not_shown_and_the_mismatch_is_audited(client, recording, bob,
                                                                     settings):
    sign_in_verified(client, bob)
    name = archive.object_name(recording, archive.segment_object(
        recording.manifest["segments"][1]["name"]))
    with archive.storage().open(name, "rb") as file:
        blob = bytearray(file.read())
    blob[len(blob) // 2] ^= 0x01
    archive.storage().delete(name)
    archive.storage().save(name, ContentFile(bytes(blob)))
    response = client.get(segment(recording, 1))
    assert response.status_code == 502
    assert b"Traceback" not in response.content
    [failed] = events(EventType.RECORDING_VERIFICATION_FAILED)
    assert failed.details["recording"] == recording.pk


# --- Exports ----------------------------------------------------------------------------------


def test_an_export_needs_a_reason(client, english, recording, bob):
    sign_in_verified(client, bob)
    for reason in ("", "   ", "because"):
        response = client.post(url(recording, "export/"), {"export-reason": reason})
        assert response.status_code == 400
        errors = response.context["export_form"].errors["reason"]
        assert errors, reason
    assert "at least 10 characters" in response.content.decode()
    assert not RecordingExport.objects.exists()
    assert not events(EventType.RECORDING_EXPORT_REQUESTED)


def test_an_export_with_a_reason_is_queued_and_audited(client, english, recording, bob):
    sign_in_verified(client, bob)
    reason = "Complaint 2026-117: the customer disputes a transfer"
    response = client.post(url(recording, "export/"), {"export-reason": reason})
    assert response.status_code == 302
    assert response["Location"].startswith(url(recording, "change/"))
    export = RecordingExport.objects.get()
    assert (export.state, export.requested_by, export.reason) == (ExportState.QUEUED, bob, reason)
    [requested] = events(EventType.RECORDING_EXPORT_REQUESTED)
    assert requested.details == {"recording": recording.pk, "export": export.pk,
                                 "reason": reason}
    assert requested.actor_label == "bob"

    # The recording's page lists it with its progress and polls while it is unfinished.
    page = client.get(url(recording, "change/")).content.decode()
    assert f'data-export="{export.pk}" data-state="queued"' in page
    assert "data-poll-url" in page
    progress = client.get(url(recording, "exports.json")).json()
    assert progress == {"exports": [{"id": export.pk, "state": "queued", "state_label": "Queued",
                                     "progress": 0, "download": None}]}


def test_a_recording_not_archived_is_not_exported(client, english, alice, bob):
    recording = write_recording(schedule(alice))
    sign_in_verified(client, bob)
    response = client.post(url(recording, "export/"),
                           {"export-reason": "Complaint 2026-117 by the customer"})
    assert response.status_code == 400
    assert "only archived recordings can be played" in response.content.decode()
    assert not RecordingExport.objects.exists()


def test_a_finished_export_is_downloaded_and_audited_with_its_hash(client, recording, bob):
    export = finished_export(recording, bob)
    sign_in_verified(client, bob)
    listing = client.get(EXPORTS).content.decode()
    download = url(recording, f"export/{export.pk}/download/")
    assert download in listing
    response = client.get(download)
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    assert "attachment" in response["Content-Disposition"]
    assert "no-store" in response["Cache-Control"]
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == export.sha256
    [downloaded] = events(EventType.RECORDING_EXPORT_DOWNLOADED)
    assert downloaded.details["sha256"] == export.sha256
    assert downloaded.details["export"] == export.pk
    assert downloaded.actor_label == "bob"


def test_an_unfinished_or_changed_export_is_not_handed_out(client, recording, bob):
    sign_in_verified(client, bob)
    queued = RecordingExport.objects.create(recording=recording, requested_by=bob,
                                            reason="Complaint 2026-117 by the customer")
    assert client.get(url(recording, f"export/{queued.pk}/download/")).status_code == 404
    export = finished_export(recording, bob)
    RecordingExport.objects.filter(pk=export.pk).update(sha256="0" * 64)
    response = client.get(url(recording, f"export/{export.pk}/download/"))
    assert response.status_code == 502
    assert not events(EventType.RECORDING_EXPORT_DOWNLOADED)
    assert events(EventType.RECORDING_VERIFICATION_FAILED)


# --- Legal hold -------------------------------------------------------------------------------


def test_a_legal_hold_is_placed_and_lifted_with_a_reason(client, english, recording, bob):
    sign_in_verified(client, bob)
    hold = url(recording, "legal-hold/")
    refused = client.post(hold, {"hold-hold": "1", "hold-reason": ""})
    assert refused.status_code == 400
    assert refused.context["hold_form"].errors["reason"]
    assert not Recording.objects.get(pk=recording.pk).legal_hold

    placed = client.post(hold, {"hold-hold": "1", "hold-reason": "BaFin request 2026/33"},
                         follow=True)
    assert placed.status_code == 200
    assert "The legal hold is placed" in placed.content.decode()
    assert Recording.objects.get(pk=recording.pk).legal_hold
    [held] = events(EventType.RECORDING_LEGAL_HOLD_SET)
    assert held.details == {"recording": recording.pk, "reason": "BaFin request 2026/33"}
    assert held.actor_label == "bob"

    # Placing it twice changes nothing and writes nothing.
    client.post(hold, {"hold-hold": "1", "hold-reason": "BaFin request 2026/33"})
    assert len(events(EventType.RECORDING_LEGAL_HOLD_SET)) == 1

    client.post(hold, {"hold-hold": "0", "hold-reason": "BaFin closed the case"})
    assert not Recording.objects.get(pk=recording.pk).legal_hold
    [lifted] = events(EventType.RECORDING_LEGAL_HOLD_LIFTED)
    assert lifted.details["reason"] == "BaFin closed the case"
    page = client.get(url(recording, "change/")).content.decode()
    assert 'data-event="recording.legal_hold_set"' in page
    assert 'data-event="recording.legal_hold_lifted"' in page


def test_a_legal_hold_needs_a_post_with_a_csrf_token(recording, bob):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    sign_in_verified(strict, bob)
    response = strict.post(url(recording, "legal-hold/"),
                           {"hold-hold": "1", "hold-reason": "BaFin request 2026/33"})
    assert response.status_code == 403
    assert not Recording.objects.get(pk=recording.pk).legal_hold
    assert Recording.objects.get(pk=recording.pk).state == RecordingState.ARCHIVED
