"""Render a session recording as an MP4 video (H.264, the shared screen's own size, VFR).

Pure: no models, no database, no Django settings; the export task calls ``render_mp4``.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc
from PIL import Image

from recordings.format import FLAG_REPEATED, RECORD_END, RECORD_KEYFRAME, RECORD_TILE, Record

# The binary screen message header of docs/protocol.md, from its one definition.
from sessions_app.protocol import (
    CODEC_JPEG,
    CODEC_WEBP,
    KIND_TILE,
    MAX_SCREEN_SIDE,
    PROTOCOL_VERSION,
)
from sessions_app.protocol import HEADER as SCREEN_HEADER

# Only the decoder the header names may read a tile: customer bytes never reach other parsers.
PILLOW_FORMATS = {CODEC_JPEG: "JPEG", CODEC_WEBP: "WEBP"}

TIME_BASE = Fraction(1, 1000)  # pts in milliseconds of session time
BACKGROUND = (0, 0, 0)  # before the first keyframe, letterbox bars and the odd-size padding
X264_OPTIONS = {
    "preset": "veryfast",
    "crf": "23",
    # No B-frames: with sparse, irregular timestamps their reordering delay makes the MP4 muxer
    # compute a wrong (much shorter) duration, and screen content gains little from them.
    "bf": "0",
}


class NoPicture(Exception):
    """The recording holds no (decodable) keyframe: there is no screen to put in a video."""


@dataclass(frozen=True)
class VideoInfo:
    width: int  # the video's size: the first keyframe's screen, padded to even
    height: int
    frames: int
    duration_us: int  # session time the video spans, from 0 to the end
    codec: str = "h264"
    skipped_tiles: int = 0  # screen messages (tiles or keyframes) that could not be decoded


@dataclass(frozen=True)
class _Screen:
    """A screen message's header, checked like ``sessions_app.protocol.parse_tile``."""

    screen_w: int
    screen_h: int
    x: int
    y: int
    w: int
    h: int
    codec: int


def _parse_screen(payload: bytes, *, keyframe: bool) -> _Screen | None:
    if len(payload) <= SCREEN_HEADER.size:
        return None
    version, kind, _seq, _captured, screen_w, screen_h, x, y, w, h, codec, _flags = (
        SCREEN_HEADER.unpack_from(payload)
    )
    screen = _Screen(screen_w, screen_h, x, y, w, h, codec)
    if version != PROTOCOL_VERSION or kind != KIND_TILE or codec not in PILLOW_FORMATS:
        return None
    if not (0 < screen_w <= MAX_SCREEN_SIDE and 0 < screen_h <= MAX_SCREEN_SIDE):
        return None
    if w == 0 or h == 0 or x + w > screen_w or y + h > screen_h:
        return None
    if keyframe and (x, y, w, h) != (0, 0, screen_w, screen_h):
        return None
    return screen


def _decode(payload: bytes, screen: _Screen) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(payload[SCREEN_HEADER.size:]),
                        formats=[PILLOW_FORMATS[screen.codec]]) as image:
            # The browser may send fewer pixels than the rectangle (a scaled-down keyframe),
            # never more than the screen: refusing larger images bounds memory before decoding.
            if image.width > screen.screen_w or image.height > screen.screen_h:
                return None
            return image.convert("RGB")
    except Exception:  # customer bytes: any decoder failure skips just this one tile
        return None


class _Compositor:
    """The picture as the staff viewer drew it, on a canvas of the first keyframe's size."""

    def __init__(self, screen_w: int, screen_h: int):
        self.width, self.height = screen_w, screen_h
        # H.264 yuv420p needs even sides: one black pixel of padding, never a scaling.
        self.canvas = Image.new("RGB", (screen_w + screen_w % 2, screen_h + screen_h % 2),
                                BACKGROUND)
        self.screen: tuple[int, int] | None = None  # the current picture's screen size

    def keyframe(self, screen: _Screen, image: Image.Image) -> None:
        if (screen.screen_w, screen.screen_h) != (self.width, self.height):
            # Another screen size (the customer resized or rotated): fit it into the video's
            # size keeping its aspect ratio, with black bars, instead of changing the size.
            self.canvas.paste(BACKGROUND, (0, 0, self.width, self.height))
        self.screen = (screen.screen_w, screen.screen_h)
        self._paste(screen, image)

    def tile(self, screen: _Screen, image: Image.Image) -> bool:
        # Like the viewer: a tile for another screen size than the picture's waits for the
        # keyframe of that size (it would land in the wrong place).
        if self.screen != (screen.screen_w, screen.screen_h):
            return False
        self._paste(screen, image)
        return True

    def _paste(self, screen: _Screen, image: Image.Image) -> None:
        scale = min(self.width / screen.screen_w, self.height / screen.screen_h)
        left = (self.width - screen.screen_w * scale) / 2
        top = (self.height - screen.screen_h * scale) / 2
        # Rounding both edges (not the size) keeps neighbouring tiles seamless when scaled.
        x0, y0 = round(left + screen.x * scale), round(top + screen.y * scale)
        x1 = max(x0 + 1, round(left + (screen.x + screen.w) * scale))
        y1 = max(y0 + 1, round(top + (screen.y + screen.h) * scale))
        if image.size != (x1 - x0, y1 - y0):
            image = image.resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS)
        self.canvas.paste(image, (x0, y0))


class _Encoder:
    """An H.264 stream in an MP4 file; frames at millisecond pts, the last one held 1 ms."""

    def __init__(self, path: Path, width: int, height: int, max_fps: int):
        self.container = av.open(str(path), "w", format="mp4",
                                 options={"movflags": "+faststart"})  # playable while loading
        self.stream = self.container.add_stream("libx264", rate=max_fps, options=X264_OPTIONS)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = TIME_BASE
        context = self.stream.codec_context
        context.time_base = TIME_BASE
        # Convert and tag as BT.709 limited range, so players do not guess the colours.
        context.colorspace = Colorspace.ITU709
        context.color_range = ColorRange.MPEG
        context.color_primaries = ColorPrimaries.BT709
        context.color_trc = ColorTrc.BT709
        self.frames = 0
        self.last_pts: int | None = None
        self._held: av.Packet | None = None

    def frame(self, canvas: Image.Image, pts: int) -> None:
        frame = av.VideoFrame.from_image(canvas).reformat(
            format="yuv420p", dst_colorspace=Colorspace.ITU709,
            dst_color_range=ColorRange.MPEG, dst_color_primaries=ColorPrimaries.BT709,
            dst_color_trc=ColorTrc.BT709,
        )
        frame.pts, frame.time_base = pts, TIME_BASE
        self._mux(self.stream.encode(frame))
        self.frames += 1
        self.last_pts = pts

    def finish(self) -> None:
        self._mux(self.stream.encode(None))
        if self._held is not None:
            # The MP4 muxer takes each sample's duration from the next one's time; the last
            # would get a nominal 1/max_fps. 1 ms keeps the file's duration the recording's.
            self._held.duration = 1
            self.container.mux(self._held)
        self.container.close()

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # already failing: the first error is the one to report
            pass

    def _mux(self, packets: list[av.Packet]) -> None:
        # Always hold back the newest packet, so the last one can get its duration.
        for packet in packets:
            if self._held is not None:
                self.container.mux(self._held)
            self._held = packet


class _Progress:
    """Reports at most every 1 % and every second (plus 0.0 and 1.0), so callers can save it."""

    def __init__(self, callback: Callable[[float], None] | None, duration_us: int | None):
        self.callback, self.duration_us = callback, duration_us
        self.last_fraction, self.last_time = 0.0, time.monotonic()
        if callback is not None:
            callback(0.0)

    def at(self, at_us: int) -> None:
        if self.callback is None or not self.duration_us:
            return
        fraction = min(1.0, at_us / self.duration_us)
        now = time.monotonic()
        if fraction - self.last_fraction >= 0.01 and now - self.last_time >= 1.0 and (
            fraction < 1.0
        ):
            self.last_fraction, self.last_time = fraction, now
            self.callback(fraction)

    def done(self) -> None:
        if self.callback is not None:
            self.callback(1.0)


def render_mp4(
    records: Iterable[Record],
    output: str | os.PathLike,
    *,
    duration_us: int | None = None,
    progress: Callable[[float], None] | None = None,
    max_fps: int = 10,
) -> VideoInfo:
    """Render a recording's screen into an MP4 at ``output``; return what was written.

    The video has the first keyframe's screen size (an odd side padded by one black pixel).
    A later keyframe of another size (the customer resized or rotated the screen) is scaled
    into that size keeping its aspect ratio, with black bars; tiles are drawn only onto a
    picture of their own screen size, like the live viewer. Repeated keyframes at segment
    starts (``FLAG_REPEATED``) are used only when no picture exists yet: drawing them would
    undo the tiles since the original. Undecodable messages are skipped and counted.

    Frames have variable rate, true session times (ms) and at most ``max_fps`` per second: a
    change is shown at once if the last frame is 1/max_fps old, else at that moment with every
    change up to it. Before the first keyframe the video is black. The last picture is held to
    the end: ``duration_us`` if given (later records are ignored), else the end record's (or
    the last record's) time. Without ``duration_us``, ``progress`` hears only 0.0 and 1.0.

    Written to a temporary file beside ``output`` (mode 0600, kept by the rename: a session
    recording is private) and renamed, so ``output`` is never half written. Raises
    ``NoPicture`` when there is no decodable keyframe.
    """
    if not 1 <= max_fps <= 1000:
        raise ValueError("max_fps must be between 1 and 1000 (pts are in milliseconds)")
    interval_ms = -(-1000 // max_fps)  # rounded up, so never more than max_fps per second
    output = Path(output)
    reporter = _Progress(progress, duration_us)
    compositor: _Compositor | None = None
    encoder: _Encoder | None = None
    temporary: Path | None = None
    pending_pts: int | None = None  # when the next frame is due, if the picture changed
    skipped = 0
    end_us = 0
    try:
        for record in records:
            if duration_us is not None and record.at_us > duration_us:
                break
            end_us = record.at_us
            reporter.at(record.at_us)
            if record.type not in (RECORD_KEYFRAME, RECORD_TILE):
                if record.type == RECORD_END:
                    break
                continue
            keyframe = record.type == RECORD_KEYFRAME
            if keyframe and record.flags & FLAG_REPEATED and compositor is not None:
                continue
            if not keyframe and compositor is None:
                continue  # no picture yet to draw on (the viewer ignores these too)
            screen = _parse_screen(record.payload, keyframe=keyframe)
            image = _decode(record.payload, screen) if screen is not None else None
            if image is None:
                skipped += 1
                continue
            at_ms = record.at_us // 1000
            if pending_pts is not None and at_ms > pending_pts:
                encoder.frame(compositor.canvas, pending_pts)  # the picture before this change
                pending_pts = None
            if compositor is None:
                compositor = _Compositor(screen.screen_w, screen.screen_h)
                fd, name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.",
                                            suffix=".tmp")
                os.close(fd)
                temporary = Path(name)
                encoder = _Encoder(temporary, *compositor.canvas.size, max_fps)
                if at_ms > 0:
                    # Keep times true to the session: black until the customer's first picture.
                    encoder.frame(compositor.canvas, 0)
            if keyframe:
                compositor.keyframe(screen, image)
            elif not compositor.tile(screen, image):
                continue
            if pending_pts is None:
                last = encoder.last_pts
                pending_pts = at_ms if last is None else max(at_ms, last + interval_ms)
        if compositor is None:
            detail = f" ({skipped} undecodable screen messages)" if skipped else ""
            raise NoPicture(f"the recording has no decodable keyframe{detail}: no screen to show")
        if duration_us is not None:
            end_us = max(end_us, duration_us)
        end_ms = end_us // 1000
        if pending_pts is not None and pending_pts < end_ms:
            encoder.frame(compositor.canvas, pending_pts)
            pending_pts = None
        last = -1 if encoder.last_pts is None else encoder.last_pts
        if pending_pts is not None or last < end_ms:
            # The final picture again at the end, so the video lasts as long as the session.
            encoder.frame(compositor.canvas, max(end_ms, last + 1))
        encoder.finish()
        frames, encoder = encoder.frames, None
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())  # the export is complete on disk before it has its name
        os.replace(temporary, output)
        temporary = None
    finally:
        if encoder is not None:
            encoder.close()
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    reporter.done()
    width, height = compositor.canvas.size
    return VideoInfo(width, height, frames, end_us, skipped_tiles=skipped)
