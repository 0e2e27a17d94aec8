"""Benchmark: a two-hour session recording, its archive pipeline, and seeking in the archive.

Measures, on a throw-away test database and its own var/ folder:

1. **Writing**: a synthetic 2-hour session written with ``RecordingWriter`` as the relay writes
   it: a 1280x800 screen, a full-screen JPEG keyframe (60-100 KB) every 10 s, 2-5 tiles a second
   of 5-20 KB, a chat line every 2-5 minutes, 10 minutes of staff control with pointer input,
   a heartbeat ``tick`` every 2 s. Size, segments, records, write rate (MB/s and the share of
   one core a session of this kind takes).
2. **The archive pipeline**: the real one (``actions.start_recording``, ``close_recording``,
   ``archive.run``), each step timed around ``run`` (finalize = read, verify, sign; store =
   zstd + AES-256-GCM per segment into ``storages["recordings"]``; verify = read everything
   back), in MB/s of recording.
3. **Seeking**: for the start, the end and BENCH_RECORDING_SEEKS random moments (default 30),
   the time to the first picture: find the keyframe in the manifest, fetch that segment from
   the archive (read, decrypt, decompress, check its SHA-256), parse records from the
   keyframe's offset, decode the keyframe JPEG with Pillow. Also the exact picture at that
   moment (every tile since the keyframe decoded and drawn).
4. **One HTTP round trip** per seek target (the first BENCH_RECORDING_HTTP, default 10) of the
   admin's segment endpoint through Django's test client, signed in as a Compliance officer
   with both factors, as the browser player fetches it (the audit of the jump included).

Images: a pool of 24 distinct desktop screenshots (three windows of banking forms, each with
its own layout and a faint noise overlay, JPEG quality 60) and 240 distinct tiles cut from them,
made once with Pillow and reused in turn. A keyframe repeats only after 4 minutes and a tile
after about a minute of session time, beyond zstd's window at level 3, so compression finds no
repeats a real session would not have (the keyframe repeated at each segment start is real).

    env $(TEST_ENV) .venv/bin/python bench/recording.py
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/portal env $(TEST_ENV) ...

Figures go to ``var/bench/recording-<db>.json``. BENCH_RECORDING_HOURS (default 2) changes the
session's length; BENCH_RECORDING_BUDGET (default 300 s) bounds the whole run.
"""

from __future__ import annotations

import bisect
import io
import json
import math
import os
import random
import resource
import shutil
import signal
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = ROOT / "var" / "bench"
RUN_DIR = OUTPUT_DIR / f"recording-run-{os.getpid()}"

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.update({
    # Its own var/ (recordings, archive, SQLite test database), shared with nothing else.
    "PORTAL_VAR_DIR": str(RUN_DIR),
    "PORTAL_CACHE_PREFIX": f"{os.environ.get('PORTAL_CACHE_PREFIX', 'portal')}-rec-{os.getpid()}",
    "PORTAL_OPENING_HOURS": "mon-sun 00:00-23:59:59",
    "PORTAL_HOLIDAY_STATE": "none",
})

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from recordings import actions, archive, tasks  # noqa: E402
from recordings import format as fmt  # noqa: E402
from sessions_app import protocol  # noqa: E402

HOURS = float(os.environ.get("BENCH_RECORDING_HOURS", 2))
SEEKS = int(os.environ.get("BENCH_RECORDING_SEEKS", 30))
HTTP_SEEKS = int(os.environ.get("BENCH_RECORDING_HTTP", 10))
BUDGET_SECONDS = int(os.environ.get("BENCH_RECORDING_BUDGET", 300))
SEED = 20250301
SCREEN = (1280, 800)
KEYFRAME_EVERY_S = 10
TILES_PER_S = (2, 5)
TILE_BYTES = (5 * 1024, 20 * 1024)
KEYFRAME_BYTES = (60 * 1024, 100 * 1024)
KEYFRAME_POOL, TILE_POOL = 24, 240
CHAT_EVERY_S = (120, 300)
CONTROL_WINDOW_S = (1800, 2400)  # staff control with pointer input, 3 events a second
HEARTBEAT_S = 2
SEEK_TARGET_MS = 2000
SECOND = 1_000_000
MB = 1_000_000


# --- Images ------------------------------------------------------------------------------------


def desktop(rnd: random.Random) -> Image.Image:
    """A screenshot-like picture: a gradient desktop, three windows of banking forms, a bar."""
    w, h = SCREEN
    ramp = Image.linear_gradient("L").resize(SCREEN)
    image = Image.merge("RGB", [ramp.point(lambda v: 40 + v // 3),
                                ramp.point(lambda v: 70 + v // 4), Image.new("L", SCREEN, 140)])
    draw = ImageDraw.Draw(image)
    words = ["IBAN", "DE89", "3704", "0044", "0532", "0130", "00", "Betrag", "EUR", "1.250,00",
             "Empfänger", "Muster", "GmbH", "Verwendungszweck", "Rechnung", "Konto", "Saldo"]
    for _ in range(3):
        x, y = rnd.randrange(0, w - 500), rnd.randrange(0, h - 350)
        ww, wh = rnd.randrange(350, 700), rnd.randrange(250, 450)
        draw.rectangle([x, y, x + ww, y + wh], fill=(245, 245, 245), outline=(90, 90, 90))
        draw.rectangle([x, y, x + ww, y + 24], fill=(30, 80, 160))
        draw.text((x + 8, y + 6), "Online-Banking – Überweisung", fill=(255, 255, 255))
        for line in range(y + 34, y + wh - 14, 14):
            text = " ".join(rnd.choice(words) for _ in range(rnd.randrange(3, 12)))
            draw.text((x + 10, line), text, fill=(20, 20, 20))
    draw.rectangle([0, h - 40, w, h], fill=(25, 25, 35))
    # A faint noise overlay, different in every picture: no two JPEGs share their bytes.
    return Image.blend(image, Image.effect_noise(SCREEN, 64).convert("RGB"), 0.02)


def jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def image_pools(rnd: random.Random) -> tuple[list[Image.Image], list[bytes], list[tuple]]:
    """Distinct keyframe JPEGs (60-100 KB) and tiles (5-20 KB, with their rectangles)."""
    pictures, keyframes = [], []
    while len(keyframes) < KEYFRAME_POOL:
        picture = desktop(rnd)
        data = jpeg(picture, 60)
        if KEYFRAME_BYTES[0] <= len(data) <= KEYFRAME_BYTES[1]:
            pictures.append(picture)
            keyframes.append(data)
    tiles = []
    while len(tiles) < TILE_POOL:
        picture = pictures[len(tiles) % len(pictures)]
        tw, th = rnd.randrange(96, 400, 16), rnd.randrange(96, 300, 16)
        x, y = rnd.randrange(0, SCREEN[0] - tw, 16), rnd.randrange(0, SCREEN[1] - th, 16)
        data = jpeg(picture.crop((x, y, x + tw, y + th)), rnd.choice((70, 80, 90)))
        if TILE_BYTES[0] <= len(data) <= TILE_BYTES[1]:
            tiles.append(((x, y, tw, th), data))
    return pictures, keyframes, tiles


# --- 1. Writing --------------------------------------------------------------------------------


def session_plan(rnd: random.Random, keyframes: list[bytes], tiles: list[tuple]) -> list[tuple]:
    """Every record of the session in order: (at_us, method name, args, kwargs)."""
    duration = int(HOURS * 3600 * SECOND)
    plan: list[tuple] = [
        (0, "event", ({"type": "recording_started", "session": "bench"},), {}),
        (200_000, "event", ({"type": "consent", "kind": "screen_shared"},), {}),
    ]
    seq = 0

    def wire(kind: str, data: bytes, rect: tuple, at_us: int) -> bytes:
        nonlocal seq
        seq += 1
        tile = protocol.Tile(seq=seq, captured_ms=1_740_000_000_000 + at_us // 1000,
                             screen_w=SCREEN[0], screen_h=SCREEN[1], x=rect[0], y=rect[1],
                             w=rect[2], h=rect[3], codec=protocol.CODEC_JPEG,
                             flags=protocol.FLAG_KEYFRAME if kind == "keyframe" else 0)
        return protocol.pack_tile(tile, data)

    keyframe_index = tile_index = 0
    rate = rnd.uniform(*TILES_PER_S)
    at = 500_000
    next_keyframe = at
    while at < duration:
        if at >= next_keyframe:
            data = keyframes[keyframe_index % len(keyframes)]
            keyframe_index += 1
            plan.append((at, "keyframe", (wire("keyframe", data, (0, 0, *SCREEN), at),), {}))
            next_keyframe += KEYFRAME_EVERY_S * SECOND
            rate = rnd.uniform(*TILES_PER_S)  # activity changes every 10 s
        else:
            rect, data = tiles[tile_index % len(tiles)]
            tile_index += 1
            plan.append((at, "tile", (wire("tile", data, rect, at),), {}))
        at += max(1000, int(rnd.expovariate(rate) * SECOND))
    chat_at, speaker = rnd.randrange(*CHAT_EVERY_S) * SECOND, 0
    while chat_at < duration:
        who = ("customer", fmt.CHANNEL_CUSTOMER) if speaker % 2 else ("staff", fmt.CHANNEL_STAFF)
        plan.append((chat_at, "chat", ({"type": "chat", "from": who[0], "name": "Alice Adviser",
                                        "text": "Bitte klicken Sie jetzt auf „Überweisung“."},),
                     {"channel": who[1]}))
        speaker += 1
        chat_at += rnd.randrange(*CHAT_EVERY_S) * SECOND
    start, end = (s * SECOND for s in CONTROL_WINDOW_S)
    if end < duration:
        plan.append((start, "event", ({"type": "control", "granted": True, "by": "customer",
                                       "step": "granted"},), {}))
        for at in range(start + 300_000, end, SECOND // 3):
            plan.append((at, "input", ({"type": "input", "event": "pointermove",
                                        "x": round(rnd.random(), 4),
                                        "y": round(rnd.random(), 4)},), {}))
        plan.append((end, "event", ({"type": "control", "granted": False, "by": "staff",
                                     "step": "revoked"},), {}))
    for at in range(HEARTBEAT_S * SECOND, duration, HEARTBEAT_S * SECOND):
        plan.append((at + 1, "tick", (), {}))
    plan.sort(key=lambda entry: entry[0])  # stable: same-time records keep their order
    plan.append((duration, "end", ("customer_ended",), {}))
    return plan


def write_session(directory: Path, reference: str, plan: list[tuple]) -> dict:
    writer = fmt.RecordingWriter(directory, reference)
    payload_bytes = 0
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for at_us, method, args, kwargs in plan:
        if method == "end":
            writer.end(*args, at_us)
        else:
            getattr(writer, method)(*args, at_us, **kwargs)
        if method in ("keyframe", "tile"):
            payload_bytes += len(args[0])
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    files = sorted(directory.glob(f"*{fmt.SEGMENT_SUFFIX}"))
    size = sum(f.stat().st_size for f in files)
    session_s = plan[-1][0] / SECOND
    user, system = after.ru_utime - cpu.ru_utime, after.ru_stime - cpu.ru_stime
    return {
        "session_seconds": session_s,
        "records_written": len(plan),
        "screen_payload_mb": round(payload_bytes / MB, 1),
        "bytes": size, "mb": round(size / MB, 1),
        "mb_per_session_hour": round(size / MB / (session_s / 3600), 1),
        "segments": len(files),
        "segment_mb_mean": round(size / MB / len(files), 2),
        "write_seconds": round(seconds, 2),
        "write_mb_per_s": round(size / MB / seconds, 1),
        "write_records_per_s": round(len(plan) / seconds),
        "cpu_seconds": {"user": round(user, 2), "system": round(system, 2)},
        # What one session of this kind costs the relay: writer CPU over session time.
        "relay_core_share_pct": round(100 * (user + system) / session_s, 3),
    }


# --- 2. The archive pipeline -------------------------------------------------------------------


def timed_pipeline(recording_id: int) -> dict:
    """``archive.run`` itself, its steps timed (run looks them up in the module at call time)."""
    spent: dict[str, float] = {}
    originals = {name: getattr(archive, name) for name in
                 ("finalize", "store", "verify_and_archive", "delete_working_copy")}

    def timing(name, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - started
        return wrapper

    with mock.patch.multiple(archive, **{name: timing(name, function)
                                         for name, function in originals.items()}):
        started = time.perf_counter()
        outcome = archive.run(recording_id)
        spent["run"] = time.perf_counter() - started
    if outcome != "archived":
        raise RuntimeError(f"the pipeline said {outcome!r}")
    return spent


def pipeline(recording, size: int) -> dict:
    spent = timed_pipeline(recording.pk)
    recording.refresh_from_db()
    steps = {}
    for name, key in (("finalize", "finalize"), ("store", "store"),
                      ("verify", "verify_and_archive"), ("delete working copy",
                                                         "delete_working_copy"),
                      ("whole run", "run")):
        seconds = spent[key]
        steps[name] = {"seconds": round(seconds, 3),
                       "mb_per_s": round(size / MB / seconds, 1) if seconds else None}
    return {
        "state": recording.state,
        "recording_mb": round(size / MB, 1),
        "stored_mb": round(recording.stored_bytes / MB, 1),
        "stored_to_recording_pct": round(100 * recording.stored_bytes / size, 2),
        "steps": steps,
        "note": "the working copy was just written, so finalize reads it from the page cache",
    }


# --- 3. Seeking --------------------------------------------------------------------------------


class TimedSource(fmt.SegmentSource):
    """An archive source that notes how long fetching (read, decrypt, decompress) took."""

    def __init__(self, source: fmt.SegmentSource):
        self.source, self.names, self.seconds = source, source.names, 0.0

    def read(self, name: str) -> bytes:
        started = time.perf_counter()
        try:
            return self.source.read(name)
        finally:
            self.seconds += time.perf_counter() - started


def decode(payload: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(payload[protocol.HEADER_BYTES:]))
    image.load()
    return image


def seek_once(recording, target_us: int) -> dict:
    """Time to the first picture at ``target_us``, and to the exact picture there."""
    started = time.perf_counter()
    source = TimedSource(archive.ArchiveSource(recording))  # unwraps the data key, as per request
    reader = fmt.RecordingReader(source, manifest=recording.manifest)
    records = reader.seek(target_us)
    first = next(r for r in records if r.type == fmt.RECORD_KEYFRAME)
    fetched = source.seconds
    parsed = time.perf_counter()
    picture = decode(first.payload).convert("RGB")
    first_frame = time.perf_counter()
    tiles = 0
    if first.at_us < target_us:
        for record in records:  # may go on into the next segment
            if record.at_us > target_us:
                break
            if record.type in (fmt.RECORD_TILE, fmt.RECORD_KEYFRAME):
                tile = protocol.parse_tile(record.payload)
                picture.paste(decode(record.payload), (tile.x, tile.y))
                tiles += 1
    exact = time.perf_counter()
    return {
        "target_s": round(target_us / SECOND, 3),
        "keyframe_s": round(first.at_us / SECOND, 3),
        "segment": first.segment,
        "first_frame_ms": round((first_frame - started) * 1000, 2),
        "fetch_ms": round(fetched * 1000, 2),
        "parse_ms": round((parsed - started - fetched) * 1000, 2),
        "decode_ms": round((first_frame - parsed) * 1000, 2),
        "exact_frame_ms": round((exact - started) * 1000, 2),
        "tiles_drawn": tiles,
        "segments_fetched_total_ms": round(source.seconds * 1000, 2),
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def summary(values: list[float]) -> dict:
    return {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2),
            "max": round(max(values), 2), "mean": round(sum(values) / len(values), 2)}


def seeking(recording, targets: list[int]) -> dict:
    seek_once(recording, targets[0])  # warm imports and caches, not counted
    runs = [seek_once(recording, target) for target in targets]
    return {
        "seeks": len(runs),
        "first_frame_ms": summary([r["first_frame_ms"] for r in runs]),
        "fetch_ms": summary([r["fetch_ms"] for r in runs]),
        "decode_ms": summary([r["decode_ms"] for r in runs]),
        "exact_frame_ms": summary([r["exact_frame_ms"] for r in runs]),
        "target_ms": SEEK_TARGET_MS,
        "runs": runs,
    }


# --- 4. One HTTP round trip of the admin's segment endpoint ------------------------------------


def http_round_trips(recording, targets: list[int]) -> dict:
    try:
        from django.urls import NoReverseMatch, reverse

        reverse("admin:recordings_recording_segment", args=[recording.pk, 0])
    except (ImportError, NoReverseMatch):
        return {"skipped": "no segment endpoint in the admin yet"}
    from django.test import Client

    from portal.roles import COMPLIANCE_OFFICER
    from tests.personas import make_staff, sign_in_verified

    client = Client()
    officer = make_staff("benchofficer", COMPLIANCE_OFFICER)
    sign_in_verified(client, officer)
    keyframes = [k for k in recording.manifest["keyframes"] if not k.get("repeated")]
    times = [k["at_us"] for k in keyframes]
    runs = []
    for target in [targets[0], *targets]:  # the first request warms up, not counted
        frame = keyframes[max(0, bisect.bisect_right(times, target) - 1)]
        path = reverse("admin:recordings_recording_segment",
                       args=[recording.pk, frame["segment"]])
        started = time.perf_counter()
        response = client.get(path, {"seek": target})
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code}")
        runs.append({"segment": frame["segment"], "ms": round(seconds * 1000, 2),
                     "bytes": len(response.content)})
    runs = runs[1:]
    return {
        "via": "django.test.Client (in process, no network), Compliance officer with 2FA; "
               "includes the audit of the jump",
        "requests": len(runs),
        "round_trip_ms": summary([r["ms"] for r in runs]),
        "segment_mb_mean": round(sum(r["bytes"] for r in runs) / len(runs) / MB, 2),
        "runs": runs,
    }


# --- Running it --------------------------------------------------------------------------------


def make_session():
    from datetime import timedelta

    from django.contrib.auth.models import User
    from django.utils import timezone

    from sessions_app.models import SessionState, SupportSession

    user = User.objects.create_user("benchstaff", password=None, is_staff=True)
    now = timezone.now()
    return SupportSession.objects.create(
        reference="BENCH-REC-0001", customer_name="Bench GmbH", call_note="recording bench",
        assigned_to=user, scheduled_by=user, state=SessionState.ACTIVE,
        slot_start=now - timedelta(hours=HOURS), slot_end=now + timedelta(minutes=5),
    )


def on_alarm(signum, frame):
    raise TimeoutError(f"the recording bench ran past BENCH_RECORDING_BUDGET={BUDGET_SECONDS} s")


def main() -> None:
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(BUDGET_SECONDS)
    started = time.monotonic()
    load_before = os.getloadavg()
    if connection.vendor != "sqlite":
        # Never the developer's database, nor the test suite's test database.
        connection.settings_dict["TEST"]["NAME"] = (
            f"test_{connection.settings_dict['NAME']}_recording")
    old_config = setup_databases(verbosity=0, interactive=False, serialized_aliases=set())
    figures: dict = {}
    try:
        print(f"recording benchmark: {HOURS:g} h session, database {connection.vendor}, "
              f"python {sys.version.split()[0]}, {os.cpu_count()} cores, "
              f"load {load_before[0]:.2f}", flush=True)
        rnd = random.Random(SEED)
        made = time.perf_counter()
        _, keyframes, tiles = image_pools(rnd)
        images = {
            "keyframes": len(keyframes), "tiles": len(tiles),
            "keyframe_kb": [round(min(map(len, keyframes)) / 1024),
                            round(max(map(len, keyframes)) / 1024)],
            "tile_kb": [round(min(len(t[1]) for t in tiles) / 1024),
                        round(max(len(t[1]) for t in tiles) / 1024)],
            "seconds": round(time.perf_counter() - made, 2),
            "how": "distinct JPEGs made once with Pillow, used in turn",
        }
        print(f"images: {images['keyframes']} keyframes of {images['keyframe_kb']} KB, "
              f"{images['tiles']} tiles of {images['tile_kb']} KB ({images['seconds']} s)",
              flush=True)
        plan = session_plan(rnd, keyframes, tiles)
        session = make_session()
        relative = f"{session.reference}/connection-bench"
        recording = actions.start_recording(session=session, directory=relative)
        written = write_session(settings.RECORDINGS_DIR / relative, session.reference, plan)
        print(f"1. written: {written['mb']} MB in {written['segments']} segments, "
              f"{written['records_written']} records, {written['write_mb_per_s']} MB/s "
              f"({written['write_seconds']} s)", flush=True)
        # The bench runs the pipeline itself, step by step, instead of a Celery worker.
        with mock.patch.object(tasks.archive_recording, "delay"):
            actions.close_recording(recording_id=recording.pk, reason="customer_ended")
        archived = pipeline(recording, written["bytes"])
        recording.refresh_from_db()
        steps = archived["steps"]
        print("2. pipeline: " + ", ".join(f"{name} {s['seconds']} s ({s['mb_per_s']} MB/s)"
                                          for name, s in steps.items()), flush=True)
        duration = recording.duration_us
        targets = [0, duration] + sorted(rnd.randrange(0, duration) for _ in range(SEEKS))
        seeks = seeking(recording, targets)
        first = seeks["first_frame_ms"]
        print(f"3. seek, first frame: p50 {first['p50']} ms, p95 {first['p95']} ms, max "
              f"{first['max']} ms ({seeks['seeks']} seeks)", flush=True)
        http = http_round_trips(recording, targets[:HTTP_SEEKS])
        if "skipped" not in http:
            trip = http["round_trip_ms"]
            print(f"4. HTTP segment fetch: p50 {trip['p50']} ms, max {trip['max']} ms",
                  flush=True)
        figures = {
            "benchmark": "session recording: writing, archive pipeline, seeking",
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "backend": {"database": connection.vendor,
                        "archive_storage": settings.STORAGES["recordings"]["BACKEND"]},
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                        "loadavg_before": [round(v, 2) for v in load_before],
                        "loadavg_after": [round(v, 2) for v in os.getloadavg()]},
            "session": {"hours": HOURS, "screen": SCREEN, "keyframe_every_s": KEYFRAME_EVERY_S,
                        "tiles_per_s": TILES_PER_S, "chat_every_s": CHAT_EVERY_S,
                        "control_window_s": CONTROL_WINDOW_S, "heartbeat_s": HEARTBEAT_S},
            "images": images,
            "written": {**written, "counts": recording.counts},
            "pipeline": archived,
            "seek": seeks,
            "http": http,
            "seconds": round(time.monotonic() - started, 1),
        }
    finally:
        signal.alarm(0)
        teardown_databases(old_config, verbosity=0)
        shutil.rmtree(RUN_DIR, ignore_errors=True)
    output = OUTPUT_DIR / f"recording-{connection.vendor}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    print_tables(figures)
    print(f"figures written to {output}")


def print_tables(figures: dict) -> None:
    w, p, s, h = figures["written"], figures["pipeline"], figures["seek"], figures["http"]
    m = figures["machine"]
    print()
    print(f"Recording benchmark: {figures['session']['hours']:g} h session, "
          f"{figures['backend']['database']}, {m['cpus']} cores, load before/after "
          f"{m['loadavg_before'][0]}/{m['loadavg_after'][0]}")
    print(f"1. Written: {w['mb']} MB ({w['mb_per_session_hour']} MB per hour), "
          f"{w['segments']} segments (mean {w['segment_mb_mean']} MB), "
          f"{w['records_written']} records; {w['write_seconds']} s = {w['write_mb_per_s']} MB/s, "
          f"{w['write_records_per_s']} records/s; writer CPU {w['relay_core_share_pct']} % of "
          f"one core for a session like this")
    print(f"2. Archive pipeline on {p['recording_mb']} MB (stored {p['stored_mb']} MB, "
          f"{p['stored_to_recording_pct']} %):")
    print(f"   {'step':>20} {'seconds':>8} {'MB/s':>8}")
    for name, step in p["steps"].items():
        print(f"   {name:>20} {step['seconds']:>8.2f} {step['mb_per_s'] or 0:>8.1f}")
    print(f"3. Seek to any point ({s['seeks']} seeks incl. start and end; target under "
          f"{s['target_ms']} ms)")
    print(f"   {'ms':>20} {'p50':>8} {'p95':>8} {'max':>8}")
    for name in ("first_frame_ms", "fetch_ms", "decode_ms", "exact_frame_ms"):
        row = s[name]
        print(f"   {name[:-3].replace('_', ' '):>20} {row['p50']:>8.1f} {row['p95']:>8.1f} "
              f"{row['max']:>8.1f}")
    if "skipped" in h:
        print(f"4. HTTP: skipped ({h['skipped']})")
    else:
        trip = h["round_trip_ms"]
        print(f"4. HTTP segment fetch ({h['requests']} requests, {h['segment_mb_mean']} MB "
              f"each): p50 {trip['p50']} ms, p95 {trip['p95']} ms, max {trip['max']} ms")


if __name__ == "__main__":
    main()
