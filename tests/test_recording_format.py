"""The recording format: writer, reader, manifest, crash and tamper rules (no database)."""

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recordings import format as rec
from sessions_app.protocol import Tile, pack_tile

DOC = Path(__file__).resolve().parent.parent / "docs/recording-format.md"
SECOND = 1_000_000


def screen(seq, *, keyframe=False, size=40):
    """A wire message as the relay carries it: 28-byte tile header and an opaque image."""
    w, h = (640, 480) if keyframe else (16, 16)
    tile = Tile(seq, 1_700_000_000_000 + seq, 640, 480, 0, 0, w, h, 1, 1 if keyframe else 0)
    return pack_tile(tile, bytes([seq % 251]) * size)


class FixedClock:
    """UTC time that advances one second per checkpoint, so checkpoints are reproducible."""

    def __init__(self):
        self.now = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

    def __call__(self):
        self.now += timedelta(seconds=1)
        return self.now


def writer(path, **limits):
    return rec.RecordingWriter(path, "S-2025-0001", clock=FixedClock(), **limits)


def a_session(path, **limits):
    """A short session with every record type the writer writes; returns the writer."""
    w = writer(path, **limits)
    w.event({"type": "consent", "kind": "screen_shared"}, 0)
    w.keyframe(screen(1, keyframe=True), 1000)
    w.tile(screen(2), 2000)
    w.input({"type": "input", "event": "pointerdown", "x": 0.1, "y": 0.2, "button": 0}, 5000)
    w.input({"type": "input", "event": "keydown", "key": "7"}, 6000)
    w.chat({"type": "chat", "text": "Guten Tag"}, 7000, channel=rec.CHANNEL_CUSTOMER)
    w.chat({"type": "chat", "text": "Hallo"}, 8000, channel=rec.CHANNEL_STAFF)
    w.tile(screen(3), 6 * SECOND)  # crosses a checkpoint boundary
    w.end("staff ended", 7 * SECOND)
    return w


def kinds(records):
    return [r.type_name for r in records]


def test_it_round_trips_every_record_type(tmp_path):
    a_session(tmp_path)
    reader = rec.RecordingReader(tmp_path)
    records = list(reader.records())
    assert kinds(records) == [
        "event", "keyframe", "tile", "input", "input", "chat", "chat",
        "checkpoint", "tile", "checkpoint", "end",
    ]
    assert records[1].payload == screen(1, keyframe=True)
    assert records[2].payload == screen(2)
    assert records[5].json() == {"type": "chat", "text": "Guten Tag"}
    assert [r.channel for r in records[5:7]] == [rec.CHANNEL_CUSTOMER, rec.CHANNEL_STAFF]
    assert records[-1].json() == {"reason": "staff ended"}
    assert reader.ended and not reader.truncated


def test_staff_keys_are_left_out_unless_allowed(tmp_path):
    w = writer(tmp_path)
    w.keyframe(screen(1, keyframe=True), 0)
    w.input({"type": "input", "event": "keydown", "key": "p"}, 1)
    w.input({"type": "input", "event": "keyup", "key": "p"}, 2, record_keys=True)
    w.input({"type": "input", "event": "pointermove", "x": 0.3, "y": 0.4}, 3)
    w.close()
    inputs = [r for r in rec.RecordingReader(tmp_path).records() if r.type == rec.RECORD_INPUT]
    assert inputs[0].json() == {"type": "input", "event": "keydown", "key": None}
    assert inputs[0].flags & rec.FLAG_KEY_REMOVED
    assert inputs[1].json()["key"] == "p" and not inputs[1].flags & rec.FLAG_KEY_REMOVED
    assert inputs[2].json() == {"type": "input", "event": "pointermove", "x": 0.3, "y": 0.4}
    assert b'"p"' not in (tmp_path / rec.segment_name(0)).read_bytes().replace(
        inputs[1].payload, b""
    )


def test_it_writes_a_checkpoint_every_five_seconds_of_session_time(tmp_path):
    w = writer(tmp_path)
    w.keyframe(screen(1, keyframe=True), 0)
    for step in range(1, 50):
        w.tile(screen(step + 1), step * SECOND // 2)  # 24.5 s of tiles, two a second
    w.close()
    records = list(rec.RecordingReader(tmp_path).records())
    times = [r.at_us for r in records if r.type == rec.RECORD_CHECKPOINT]
    assert times == [5 * SECOND, 10 * SECOND, 15 * SECOND, 20 * SECOND, 24 * SECOND + SECOND // 2]
    utc = [r.checkpoint()[1] for r in records if r.type == rec.RECORD_CHECKPOINT]
    assert utc == sorted(utc) and utc[0].tzinfo == UTC


def test_an_idle_session_still_gets_checkpoints_from_tick(tmp_path):
    w = writer(tmp_path)
    w.keyframe(screen(1, keyframe=True), 0)
    w.tick(3 * SECOND)
    w.tick(5 * SECOND)
    w.close()
    assert kinds(rec.RecordingReader(tmp_path).records()) == [
        "keyframe", "checkpoint", "checkpoint",
    ]


def test_segments_roll_over_by_size_and_repeat_the_keyframe(tmp_path):
    w = writer(tmp_path, max_segment_bytes=1000)
    w.keyframe(screen(1, keyframe=True, size=300), 0)
    for seq in range(2, 20):
        w.tile(screen(seq, size=150), seq * 1000)
    w.close()
    paths = sorted(tmp_path.glob("*.frec"))
    assert len(paths) > 3
    assert all(p.stat().st_size <= 1000 for p in paths)
    records = list(rec.RecordingReader(tmp_path).records())
    for number in range(len(paths)):
        first = next(r for r in records if r.segment == number)
        assert first.type == rec.RECORD_KEYFRAME
        assert first.payload == screen(1, keyframe=True, size=300)
        assert bool(first.flags & rec.FLAG_REPEATED) == (number > 0)
    tiles = [r.payload for r in records if r.type == rec.RECORD_TILE]
    assert tiles == [screen(seq, size=150) for seq in range(2, 20)]


def test_segments_roll_over_by_time_and_chain_their_hashes(tmp_path):
    w = writer(tmp_path, max_segment_us=10 * SECOND)
    w.keyframe(screen(1, keyframe=True), 0)
    for second in range(1, 35):
        w.tile(screen(second + 1), second * SECOND)
    w.keyframe(screen(99, keyframe=True), 35 * SECOND)
    w.close()
    paths = sorted(tmp_path.glob("*.frec"))
    assert [p.name for p in paths] == [rec.segment_name(n) for n in range(4)]
    previous = rec.ZERO_HASH
    for number, path in enumerate(paths):
        data = path.read_bytes()
        magic, version, flags, session, seg, prev, start = rec.SEGMENT_HEADER.unpack_from(data)
        assert (magic, version, seg, prev) == (rec.MAGIC, rec.FORMAT_VERSION, number, previous)
        assert session.rstrip(b"\0") == b"S-2025-0001"
        assert start == number * 10 * SECOND
        assert flags == rec.SEGMENT_FLAG_KEYFRAME
        previous = hashlib.sha256(data).digest()


def test_the_manifest_describes_the_recording_deterministically(tmp_path):
    w = a_session(tmp_path)
    manifest = w.manifest()
    assert manifest == rec.build_manifest(tmp_path)
    assert manifest["version"] == rec.FORMAT_VERSION and manifest["session"] == "S-2025-0001"
    assert manifest["duration_us"] == 7 * SECOND
    assert manifest["counts"]["input"] == 2 and manifest["counts"]["end"] == 1
    event = next(rec.RecordingReader(tmp_path).records())
    offset = rec.SEGMENT_HEADER_BYTES + rec.RECORD_HEADER_BYTES + len(event.payload)
    assert manifest["keyframes"] == [{"segment": 0, "offset": offset, "at_us": 1000,
                                      "repeated": False}]
    (segment,) = manifest["segments"]
    assert segment["sha256"] == hashlib.sha256(
        (tmp_path / segment["name"]).read_bytes()).hexdigest()
    assert manifest["ended"] and manifest["truncated"] is None
    assert rec.manifest_bytes(manifest) == rec.manifest_bytes(json.loads(
        rec.manifest_bytes(manifest)))
    stored = rec.write_manifest(tmp_path)
    assert (tmp_path / rec.MANIFEST_NAME).read_bytes() == rec.manifest_bytes(stored)
    assert list(rec.RecordingReader(tmp_path, manifest=stored).records())


def test_it_seeks_to_the_keyframe_at_or_before_a_time(tmp_path):
    w = writer(tmp_path, max_segment_us=10 * SECOND)
    w.keyframe(screen(1, keyframe=True), 0)
    for second in range(1, 40):
        if second % 7 == 0:
            w.keyframe(screen(second + 1, keyframe=True), second * SECOND)
        else:
            w.tile(screen(second + 1), second * SECOND)
    w.close()
    reader = rec.RecordingReader(tmp_path, manifest=rec.build_manifest(tmp_path))
    first = next(reader.seek(15 * SECOND + 1))
    assert first.type == rec.RECORD_KEYFRAME and first.at_us == 14 * SECOND
    # Segment 2 opens at 20 s with the 14 s keyframe repeated; it lacks the tiles of 15–19 s, so
    # an exact seek starts at the original in segment 1.
    assert [f["repeated"] for f in reader.manifest["keyframes"] if f["at_us"] == 20 * SECOND] \
        == [True]
    first = next(reader.seek(20 * SECOND + 500_000))
    assert first.at_us == 14 * SECOND and not first.flags & rec.FLAG_REPEATED
    first = next(reader.seek(21 * SECOND))
    assert first.at_us == 21 * SECOND and first.payload == screen(22, keyframe=True)
    after = list(reader.seek(25 * SECOND))
    assert after[0].at_us == 21 * SECOND
    assert after[-1].at_us == 39 * SECOND and after[0].segment < after[-1].segment
    assert next(reader.seek(0)).at_us == 0


def test_a_truncated_last_segment_is_read_up_to_the_last_complete_record(tmp_path):
    w = writer(tmp_path, max_segment_bytes=800)
    w.keyframe(screen(1, keyframe=True), 0)
    for seq in range(2, 15):
        w.tile(screen(seq, size=100), seq * 1000)
    # A crash: the process dies mid-record, no close, no end record.
    last = sorted(tmp_path.glob("*.frec"))[-1]
    w._file.write(rec.RECORD_HEADER.pack(rec.RECORD_TILE, 1, 0, 0, 500, 20_000) + b"\xff" * 50)
    reader = rec.RecordingReader(tmp_path)
    records = list(reader.records())
    assert [r.payload for r in records if r.type == rec.RECORD_TILE] == [
        screen(seq, size=100) for seq in range(2, 15)
    ]
    assert reader.truncated and not reader.ended
    assert reader.truncated_at == (last.name, last.stat().st_size - rec.RECORD_HEADER_BYTES - 50)
    assert rec.build_manifest(tmp_path)["truncated"]["segment"] == last.name


def test_a_segment_cut_inside_its_header_counts_as_truncated(tmp_path):
    w = writer(tmp_path)
    w.keyframe(screen(1, keyframe=True), 0)
    w.tile(screen(2), 1000)
    w.close()
    (tmp_path / rec.segment_name(1)).write_bytes(rec.MAGIC[:5])  # died opening segment 1
    reader = rec.RecordingReader(tmp_path)
    assert kinds(reader.records()) == ["keyframe", "tile", "checkpoint"]
    assert reader.truncated_at == (rec.segment_name(1), 0)


def _flip(path, position):
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def _tampered_recording(path):
    w = writer(path, max_segment_bytes=700)
    w.keyframe(screen(1, keyframe=True, size=100), 0)
    for seq in range(2, 9):
        w.tile(screen(seq, size=100), seq * SECOND)
    w.end("customer ended", 9 * SECOND)
    return rec.build_manifest(path)


def test_a_flipped_byte_in_a_closed_segment_is_detected_without_a_manifest(tmp_path):
    _tampered_recording(tmp_path)
    first = tmp_path / rec.segment_name(0)
    original = first.read_bytes()
    for position in range(len(original)):
        first.write_bytes(original)
        _flip(first, position)
        with pytest.raises(rec.RecordingCorrupt):
            list(rec.RecordingReader(tmp_path).records())


def test_a_flipped_byte_anywhere_is_detected_with_the_manifest(tmp_path):
    manifest = _tampered_recording(tmp_path)
    for path in sorted(tmp_path.glob("*.frec")):
        original = path.read_bytes()
        for position in range(0, len(original), 7):
            _flip(path, position)
            with pytest.raises(rec.RecordingCorrupt):
                list(rec.RecordingReader(tmp_path, manifest=manifest).records())
            path.write_bytes(original)
    assert list(rec.RecordingReader(tmp_path, manifest=manifest).records())


def test_a_checkpoint_mismatch_names_the_checkpoint(tmp_path):
    a_session(tmp_path)
    path = tmp_path / rec.segment_name(0)
    _flip(path, rec.SEGMENT_HEADER_BYTES + rec.RECORD_HEADER_BYTES + 3)  # inside the event JSON
    with pytest.raises(rec.RecordingCorrupt, match="checkpoint hash mismatch"):
        list(rec.RecordingReader(tmp_path).records())


def test_an_unwritable_folder_fails_the_recording(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the recording folder should be")
    with pytest.raises(rec.RecordingFailed):
        writer(blocker / "recording")


def test_a_failing_write_fails_the_recording_for_good(tmp_path):
    w = writer(tmp_path)
    w.keyframe(screen(1, keyframe=True), 0)
    w._file.close()
    w._file = open("/dev/full", "wb", buffering=0)  # every write: ENOSPC, a full disk
    with pytest.raises(rec.RecordingFailed, match="No space left"):
        w.tile(screen(2), 1000)
    with pytest.raises(rec.RecordingFailed):
        w.chat({"type": "chat", "text": "still there?"}, 2000, channel=rec.CHANNEL_STAFF)


def test_a_failing_fsync_fails_the_recording(tmp_path, monkeypatch):
    w = writer(tmp_path)
    w.keyframe(screen(1, keyframe=True), 0)

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rec.os, "fsync", no_space)
    with pytest.raises(rec.RecordingFailed):
        # A checkpoint is due: written, then fsynced on the writer's own thread; the failure
        # fails the next call, and close() at the latest, which waits for every fsync.
        w.tile(screen(2), 6 * SECOND)
        w.close()
    with pytest.raises(rec.RecordingFailed):
        w.chat({"type": "chat", "text": "still there?"}, 7 * SECOND, channel=rec.CHANNEL_STAFF)


def test_a_failed_fsync_stops_the_next_write(tmp_path, monkeypatch):
    w = writer(tmp_path)
    w.keyframe(screen(1, keyframe=True), 0)
    w._backstage.drain()  # the new segment's directory fsync is done
    monkeypatch.setattr(rec.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "EIO")))
    w.tile(screen(2), 6 * SECOND)  # returns: the checkpoint's fsync fails a moment later
    w._backstage.drain()  # the fsync thread has run
    with pytest.raises(rec.RecordingFailed, match="EIO"):
        w.tile(screen(3), 7 * SECOND)


def test_a_recording_is_never_written_over(tmp_path):
    a_session(tmp_path)
    with pytest.raises(rec.RecordingFailed, match="already holds"):
        writer(tmp_path)


def test_the_recording_constants_match_the_document(tmp_path):
    text = DOC.read_text()
    assert f"`{rec.SEGMENT_HEADER.format}`" in text
    assert f"`{rec.RECORD_HEADER.format}`" in text
    assert f"`{rec.CHECKPOINT.format}`" in text
    assert f"{rec.SEGMENT_HEADER_BYTES} bytes" in text
    assert f"{rec.RECORD_HEADER_BYTES} bytes" in text
    assert f"`{rec.MAGIC!r}`" in text
    assert f"| {rec.FORMAT_VERSION} | `FORMAT_VERSION` |" in text
    for name in ("SEGMENT_MAX_BYTES", "SEGMENT_MAX_US", "CHECKPOINT_INTERVAL_US",
                 "MAX_PAYLOAD_BYTES", "SESSION_REF_BYTES", "SEGMENT_FLAG_KEYFRAME",
                 "FLAG_REPEATED", "FLAG_KEY_REMOVED"):
        assert f"| {getattr(rec, name)} | `{name}` |" in text, name
    for number, name in rec.RECORD_TYPES.items():
        assert f"| {number} | `{name}` |" in text, name
    for number, name in rec.CHANNELS.items():
        assert f"| {number} | `{name}` |" in text, name
    assert f"`{rec.segment_name(0)}`" in text and f"`{rec.MANIFEST_NAME}`" in text
    documented = set(re.findall(r"^\| `(\w+)` \|", text.split("## Manifest")[1], re.M))
    manifest = a_session(tmp_path).manifest()
    assert set(manifest) | set(manifest["segments"][0]) | set(manifest["keyframes"][0]) <= (
        documented
    )


def test_the_players_copy_of_the_constants_matches_the_format():
    script = (Path(__file__).resolve().parent.parent / "recordings/static/recordings/player.js")
    text = script.read_text()
    values = dict(re.findall(r"const (\w+) = (0x[0-9a-f]+|\d+);", text))
    assert int(values["SEGMENT_HEADER_BYTES"]) == rec.SEGMENT_HEADER_BYTES
    assert int(values["RECORD_HEADER_BYTES"]) == rec.RECORD_HEADER_BYTES
    assert int(values["RECORD_KEYFRAME"]) == rec.RECORD_KEYFRAME
    assert int(values["RECORD_TILE"]) == rec.RECORD_TILE
    assert int(values["FLAG_REPEATED"], 16) == rec.FLAG_REPEATED
    magic = re.search(r"const MAGIC = \[([^\]]+)\]", text).group(1)
    assert bytes(int(b, 16) for b in magic.split(",")) == rec.MAGIC
