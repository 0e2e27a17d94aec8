"""Benchmark: key redemption with 10, 1,000 and 100,000 live keys, and what counting each key
entry before checking it costs.

Redemption looks the key up by its HMAC through the partial unique index on live keys, so the
time per redemption should stay flat however many keys are live. Every key entry is counted in
the cache before it is checked and given back when it opens its session
(``sessions_app.key_attempts``): a few round trips to Redis, measured on their own. Runs on a
throw-away test database of whatever the environment configures (SQLite by default, PostgreSQL
with DATABASE_URL; the cache is Redis with REDIS_URL):

    make bench
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/portal make bench
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

import time_machine  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

from sessions_app import actions, key_attempts, keys  # noqa: E402
from sessions_app.models import KeyState, SessionKey, SessionState, SupportSession  # noqa: E402

LIVE_COUNTS = [10, 1_000, 100_000]
REDEMPTIONS = int(os.environ.get("BENCH_REDEMPTIONS", 200))
OPEN_MOMENT = datetime(2026, 12, 2, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # a Wednesday


def make_sessions(user: User, count: int, prefix: str) -> list[SupportSession]:
    now = timezone.now()
    return SupportSession.objects.bulk_create(
        SupportSession(
            reference=f"{prefix}{i:07d}", customer_name="Bench GmbH", call_note="bench",
            assigned_to=user, scheduled_by=user, state=SessionState.KEY_ISSUED,
            slot_start=now - timedelta(minutes=1), slot_end=now + timedelta(hours=1),
        )
        for i in range(count)
    )


def add_live_keys(user: User, sessions: list[SupportSession], plains: list[str]) -> None:
    now = timezone.now()
    SessionKey.objects.bulk_create(
        (
            SessionKey(session=session, key_hmac=keys.key_hmac(plain), issued_by=user,
                       issued_at=now, lifetime_minutes=60, expires_at=now + timedelta(hours=1))
            for session, plain in zip(sessions, plains, strict=True)
        ),
        batch_size=5000,
    )


def fill_to(user: User, live: int, used: set[str]) -> None:
    """Background live keys on one session, until ``live`` keys are live in all."""
    missing = live - SessionKey.objects.filter(state=KeyState.LIVE).count()
    if missing <= 0:
        return
    [holder] = make_sessions(user, 1, f"BG{live}-")
    plains = []
    while len(plains) < missing:
        plain = keys.new_key()
        if plain not in used:
            used.add(plain)
            plains.append(plain)
    add_live_keys(user, [holder] * missing, plains)


def measure(user: User, live: int, used: set[str]) -> list[float]:
    fill_to(user, live, used)
    sessions = make_sessions(user, REDEMPTIONS, f"R{live}-")
    plains = []
    while len(plains) < REDEMPTIONS:
        plain = keys.new_key()
        if plain not in used:
            used.add(plain)
            plains.append(plain)
    add_live_keys(user, sessions, plains)
    timings = []
    for plain in plains:
        started = time.perf_counter()
        actions.redeem_key(typed_key=plain, customer_name="Erika Muster", ip="203.0.113.5")
        timings.append(time.perf_counter() - started)
    # The redeemed keys are dead now; top the live count back up for the next round.
    return timings


def key_entry_counting() -> list[float]:
    """Count a key entry before its check and give it back, as a right key does."""
    timings = []
    for n in range(REDEMPTIONS):
        started = time.perf_counter()
        attempt = key_attempts.claim(f"203.0.113.{n % 200}")
        attempt.succeeded()
        timings.append(time.perf_counter() - started)
    return timings


def lookup_plan() -> str:
    queryset = SessionKey.objects.filter(key_hmac=keys.key_hmac("1234567"), state=KeyState.LIVE)
    return queryset.explain()


def main() -> None:
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        with time_machine.travel(OPEN_MOMENT, tick=True):
            user = User.objects.create_user("bench", password=None, is_staff=True)
            used: set[str] = set()
            print(f"database: {connection.vendor}; {REDEMPTIONS} redemptions per row "
                  f"(python {sys.version.split()[0]}, {os.cpu_count()} cores)")
            print(f"{'live keys':>10}  {'mean ms':>8}  {'p50 ms':>7}  {'p99 ms':>7}")
            for live in LIVE_COUNTS:
                timings = sorted(measure(user, live, used))
                print(
                    f"{live:>10,}  {statistics.mean(timings) * 1000:8.2f}  "
                    f"{statistics.median(timings) * 1000:7.2f}  "
                    f"{timings[int(len(timings) * 0.99)] * 1000:7.2f}"
                )
            timings = sorted(key_entry_counting())
            cache_name = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
            print(f"counting a key entry before its check ({cache_name}): "
                  f"mean {statistics.mean(timings) * 1000:.3f} ms, "
                  f"p99 {timings[int(len(timings) * 0.99)] * 1000:.3f} ms")
            live_now = SessionKey.objects.filter(state=KeyState.LIVE).count()
            print(f"look-up plan with {live_now:,} live keys:")
            print("  " + lookup_plan().replace("\n", "\n  "))
    finally:
        teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    main()
