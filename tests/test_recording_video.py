"""The MP4 export of a recording (recordings/video.py), checked by decoding the video back."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import av
import pytest
from PIL import Image

from recordings import video
from recordings.format import CHANNEL_CUSTOMER, RecordingReader, RecordingWriter
from recordings.video import NoPicture, VideoInfo, render_mp4
from sessions_app import protocol
from sessions_app.protocol import CODEC_JPEG, CODEC_WEBP, FLAG_KEYFRAME, Tile, pack_tile

RED, BLUE, GREEN, WHITE = (220, 30, 30), (30, 30, 220), (30, 200, 30), (240, 240, 240)
SECOND = 1_000_000


def image_bytes(size: tuple[int, int], colour: tuple[int, int, int], codec: int = CODEC_JPEG):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG" if codec == CODEC_JPEG else "WEBP")
    return buffer.getvalue()


_seq = itertools.count(1)


def keyframe(w: int, h: int, colour, *, image_size=None) -> bytes:
    tile = Tile(next(_seq), 0, w, h, 0, 0, w, h, CODEC_JPEG, FLAG_KEYFRAME)
    return pack_tile(tile, image_bytes(image_size or (w, h), colour))


def tile(screen: tuple[int, int], x, y, w, h, colour, codec=CODEC_JPEG) -> bytes:
    return pack_tile(Tile(next(_seq), 0, *screen, x, y, w, h, codec, 0),
                     image_bytes((w, h), colour, codec))


def record(directory: Path, steps, *, end_us: int | None, **writer_options):
    """Write a recording of (at_us, 'keyframe' | 'tile' | 'chat', wire) steps; read it back."""
    with RecordingWriter(directory, "S-VIDEO-TEST", **writer_options) as writer:
        for at_us, kind, wire in steps:
            if kind == "keyframe":
                writer.keyframe(wire, at_us)
            elif kind == "tile":
                writer.tile(wire, at_us)
            else:
                writer.chat({"text": "hello"}, at_us, channel=CHANNEL_CUSTOMER)
        if end_us is not None:
            writer.end("customer ended", end_us)
    return list(RecordingReader(directory).records())


def decode(path: Path):
    """(codec, width, height, duration in s, [(time in s, picture), ...]) of an MP4."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(float(frame.time), frame.to_image()) for frame in container.decode(stream)]
        return (stream.codec_context.name, stream.width, stream.height,
                container.duration / 1_000_000, frames)


def near(pixel, colour, tolerance=40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def picture_at(frames, seconds: float) -> Image.Image:
    """The picture shown at ``seconds``: the last frame at or before it."""
    return [picture for time, picture in frames if time <= seconds + 1e-6][-1]


def test_it_composites_keyframes_and_tiles_at_native_size_and_true_times(tmp_path):
    screen = (320, 200)
    records = record(tmp_path / "rec", [
        (0, "keyframe", keyframe(*screen, RED)),
        (2 * SECOND, "tile", tile(screen, 64, 64, 64, 64, BLUE)),
        (3 * SECOND, "tile", tile(screen, 160, 96, 64, 64, GREEN, CODEC_WEBP)),
    ], end_us=5 * SECOND)
    output = tmp_path / "session.mp4"

    info = render_mp4(records, output)

    assert info == VideoInfo(320, 200, 4, 5 * SECOND, "h264", skipped_tiles=0)
    codec, width, height, duration, frames = decode(output)
    assert (codec, width, height) == ("h264", 320, 200)
    assert duration == pytest.approx(5.0, abs=0.05)
    # One frame per change at its own time, and the last picture again at the end.
    assert [time for time, _ in frames] == pytest.approx([0.0, 2.0, 3.0, 5.0], abs=0.002)
    before, after_blue, end = picture_at(frames, 1.9), picture_at(frames, 2.5), frames[-1][1]
    assert near(before.getpixel((96, 96)), RED)
    assert near(after_blue.getpixel((96, 96)), BLUE)
    assert near(after_blue.getpixel((192, 128)), RED)  # the WebP tile comes a second later
    assert near(end.getpixel((192, 128)), GREEN)
    assert near(end.getpixel((96, 96)), BLUE)
    assert near(end.getpixel((20, 20)), RED)  # outside every tile: still the keyframe


def test_an_odd_size_is_padded_by_one_black_pixel_not_scaled(tmp_path):
    records = record(tmp_path / "rec", [(0, "keyframe", keyframe(321, 201, WHITE))],
                     end_us=SECOND)
    info = render_mp4(records, tmp_path / "odd.mp4")

    assert (info.width, info.height) == (322, 202)
    _, width, height, _, frames = decode(tmp_path / "odd.mp4")
    assert (width, height) == (322, 202)
    picture = frames[0][1]
    assert near(picture.getpixel((318, 100)), WHITE)
    assert near(picture.getpixel((160, 198)), WHITE)
    assert near(picture.getpixel((321, 100)), (0, 0, 0), tolerance=60)


def test_the_video_is_black_until_the_first_keyframe_and_lasts_to_the_end(tmp_path):
    screen = (320, 200)
    records = record(tmp_path / "rec", [
        (500_000, "chat", None),
        (1_000_000, "tile", tile(screen, 0, 0, 32, 32, BLUE)),  # no picture to draw on yet
        (1_500_000, "keyframe", keyframe(*screen, RED)),
        (3_500_000, "tile", tile(screen, 0, 0, 320, 200, BLUE)),
    ], end_us=10 * SECOND)  # sparse, irregular changes: B-frames would break the duration

    info = render_mp4(records, tmp_path / "late.mp4")

    _, width, height, duration, frames = decode(tmp_path / "late.mp4")
    assert (width, height, info.frames) == (320, 200, 4)
    assert [time for time, _ in frames] == pytest.approx([0.0, 1.5, 3.5, 10.0], abs=0.002)
    assert near(frames[0][1].getpixel((10, 10)), (0, 0, 0), tolerance=30)
    assert near(frames[1][1].getpixel((10, 10)), RED)
    assert near(frames[3][1].getpixel((10, 10)), BLUE)
    assert duration == pytest.approx(10.0, abs=0.05)


def test_frames_are_coalesced_to_at_most_max_fps(tmp_path):
    screen = (64, 64)
    colours = [RED, BLUE, GREEN]
    steps = [(0, "keyframe", keyframe(*screen, WHITE))] + [
        (20_000 * n, "tile", tile(screen, 0, 0, 64, 64, colours[n % 3])) for n in range(1, 100)
    ]  # 50 changes a second for 2 s
    records = record(tmp_path / "rec", steps, end_us=2 * SECOND)

    info = render_mp4(records, tmp_path / "busy.mp4", max_fps=5)

    _, _, _, duration, frames = decode(tmp_path / "busy.mp4")
    times = [time for time, _ in frames]
    assert info.frames == len(frames)
    assert len(frames) <= 5 * 2 + 1 + 1  # 0.0, 0.2, … 2.0 and at most one more at the end
    gaps = [later - earlier for earlier, later in itertools.pairwise(times[:-1])]
    assert min(gaps) >= 0.2 - 0.002
    # Each frame shows the picture at its own time: the newest tile, not the first of a burst.
    for time, picture in frames[1:]:
        newest = max(n for n in range(100) if 20_000 * n <= round(time * SECOND))
        assert near(picture.getpixel((32, 32)), colours[newest % 3] if newest else WHITE)
    assert duration == pytest.approx(2.0, abs=0.05)


def test_progress_runs_from_zero_to_one_and_is_not_called_too_often(tmp_path, monkeypatch):
    screen = (32, 32)
    steps = [(0, "keyframe", keyframe(*screen, WHITE))] + [
        (50_000 * n, "tile", tile(screen, 0, 0, 32, 32, RED if n % 2 else BLUE))
        for n in range(1, 400)
    ]
    records = record(tmp_path / "rec", steps, end_us=20 * SECOND)
    clock = itertools.count(0.0, 0.25)  # four seconds of wall time pass at every look
    monkeypatch.setattr(video.time, "monotonic", lambda: next(clock))
    calls: list[float] = []

    render_mp4(records, tmp_path / "p.mp4", duration_us=20 * SECOND, progress=calls.append)

    assert calls[0] == 0.0 and calls[-1] == 1.0
    assert calls == sorted(calls) and all(0.0 <= fraction <= 1.0 for fraction in calls)
    steps_taken = [later - earlier for earlier, later in itertools.pairwise(calls[:-1])]
    assert len(calls) > 10 and min(steps_taken) >= 0.01 - 1e-9  # at most every 1 %


def test_records_after_duration_us_are_left_out(tmp_path):
    screen = (64, 64)
    records = record(tmp_path / "rec", [
        (0, "keyframe", keyframe(*screen, RED)),
        (3 * SECOND, "tile", tile(screen, 0, 0, 64, 64, BLUE)),
    ], end_us=4 * SECOND)

    info = render_mp4(records, tmp_path / "cut.mp4", duration_us=2 * SECOND)

    _, _, _, duration, frames = decode(tmp_path / "cut.mp4")
    assert info.duration_us == 2 * SECOND and duration == pytest.approx(2.0, abs=0.05)
    assert near(frames[-1][1].getpixel((32, 32)), RED)


def test_nothing_is_left_at_output_when_rendering_fails(tmp_path):
    screen = (64, 64)
    good = record(tmp_path / "rec", [
        (0, "keyframe", keyframe(*screen, RED)),
        (SECOND, "tile", tile(screen, 0, 0, 32, 32, BLUE)),
    ], end_us=None)
    out = tmp_path / "out"
    out.mkdir()

    def broken():
        yield from good
        raise RuntimeError("storage went away")

    with pytest.raises(RuntimeError, match="storage went away"):
        render_mp4(broken(), out / "session.mp4")
    assert list(out.iterdir()) == []  # neither the output nor its temporary file

    (out / "session.mp4").write_bytes(b"the earlier export")
    with pytest.raises(RuntimeError):
        render_mp4(broken(), out / "session.mp4")
    assert [p.name for p in out.iterdir()] == ["session.mp4"]
    assert (out / "session.mp4").read_bytes() == b"the earlier export"


def test_an_undecodable_tile_is_skipped_and_counted(tmp_path):
    screen = (64, 64)
    header_only = tile(screen, 0, 0, 32, 32, BLUE)[: protocol.HEADER_BYTES]
    records = record(tmp_path / "rec", [
        (0, "keyframe", keyframe(*screen, RED)),
        (100_000, "tile", header_only + b"not a JPEG at all"),
        (200_000, "tile", tile(screen, 0, 0, 32, 32, BLUE)[:-200]),  # a cut-off JPEG
        (300_000, "tile", b"\x07" + tile(screen, 0, 0, 32, 32, BLUE)[1:]),  # bad version
        (400_000, "tile", tile(screen, 32, 32, 32, 32, GREEN, CODEC_WEBP)),
    ], end_us=SECOND)

    info = render_mp4(records, tmp_path / "bad.mp4")

    assert info.skipped_tiles == 3
    end = decode(tmp_path / "bad.mp4")[4][-1][1]
    assert near(end.getpixel((10, 10)), RED)
    assert near(end.getpixel((48, 48)), GREEN)


def test_no_keyframe_raises_no_picture_and_writes_nothing(tmp_path):
    records = record(tmp_path / "rec", [
        (0, "chat", None),
        (SECOND, "tile", tile((64, 64), 0, 0, 32, 32, BLUE)),
    ], end_us=2 * SECOND)
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(NoPicture, match="no decodable keyframe"):
        render_mp4(records, out / "session.mp4")
    assert list(out.iterdir()) == []

    broken = record(tmp_path / "rec2", [(0, "keyframe", keyframe(64, 64, RED)[:40])],
                    end_us=SECOND)
    with pytest.raises(NoPicture, match="1 undecodable"):
        render_mp4(broken, out / "session.mp4")


def test_a_repeated_keyframe_at_a_segment_start_does_not_undo_later_tiles(tmp_path):
    screen = (64, 64)
    records = record(tmp_path / "rec", [
        (0, "keyframe", keyframe(*screen, RED)),
        (SECOND, "tile", tile(screen, 0, 0, 64, 64, BLUE)),
        (3 * SECOND, "chat", None),  # opens segment 1 with the (red) keyframe repeated
    ], end_us=4 * SECOND, max_segment_us=2 * SECOND)
    assert any(r.flags & 1 and r.segment == 1 for r in records)  # FLAG_REPEATED

    render_mp4(records, tmp_path / "seg.mp4")

    frames = decode(tmp_path / "seg.mp4")[4]
    assert all(near(picture.getpixel((32, 32)), BLUE) for time, picture in frames if time >= 1)


def test_a_new_screen_size_is_fitted_into_the_first_one(tmp_path):
    records = record(tmp_path / "rec", [
        (0, "keyframe", keyframe(320, 200, RED)),
        (SECOND, "keyframe", keyframe(200, 200, GREEN, image_size=(100, 100))),  # scaled down
        (2 * SECOND, "tile", tile((320, 200), 0, 0, 320, 200, BLUE)),  # the old size: not drawn
    ], end_us=3 * SECOND)

    info = render_mp4(records, tmp_path / "resized.mp4")

    assert (info.width, info.height) == (320, 200)
    end = decode(tmp_path / "resized.mp4")[4][-1][1]
    assert end.size == (320, 200)
    assert near(end.getpixel((160, 100)), GREEN)
    assert near(end.getpixel((10, 100)), (0, 0, 0), tolerance=30)  # letterbox bar
    assert near(end.getpixel((300, 100)), (0, 0, 0), tolerance=30)


def test_the_screen_header_is_the_protocols():
    # recordings/video.py imports them from the one definition.
    assert video.SCREEN_HEADER.format == protocol.HEADER.format
    assert video.PROTOCOL_VERSION == protocol.PROTOCOL_VERSION
    assert video.KIND_TILE == protocol.KIND_TILE
    assert (video.CODEC_JPEG, video.CODEC_WEBP) == (protocol.CODEC_JPEG, protocol.CODEC_WEBP)
    assert set(video.PILLOW_FORMATS) == set(protocol.CODECS)
    assert video.MAX_SCREEN_SIDE == protocol.MAX_SCREEN_SIDE
