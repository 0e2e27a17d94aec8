"""Benchmark: audit appends (one and several writers) and chain verification.

Every state change in the portal appends one audit event under a global lock, so the append
rate is the ceiling on audited state changes per second. Each commit also appends a signed line
to the head log (a fresh temporary file here; PORTAL_AUDIT_HEAD_LOG_FSYNC=0 measures it without
fsync), and the full verification checks every line of it. Runs on a throw-away test database of
whatever the environment configures (SQLite by default, PostgreSQL with DATABASE_URL).

    make bench                     # embedded SQLite
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/portal make bench
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ["PORTAL_AUDIT_HEAD_LOG"] = os.path.join(tempfile.mkdtemp(), "audit-heads.log")
os.environ["PORTAL_AUDIT_ANCHOR_FILE"] = os.path.join(tempfile.mkdtemp(), "audit-anchors.log")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from audit.chain import verify_chain, verify_trail  # noqa: E402
from audit.events import Actor, record  # noqa: E402

SINGLE = int(os.environ.get("BENCH_SINGLE", 2000))
WRITERS = int(os.environ.get("BENCH_WRITERS", 4))
PER_WRITER = int(os.environ.get("BENCH_PER_WRITER", 500))
DETAILS = {"session": "S-2026-000123", "reason": "benchmark", "fields": ["a", "b", "c"]}


def append_one(label: str) -> float:
    started = time.perf_counter()
    record(event_type="bench.event", actor=Actor.system(label), ip="203.0.113.7",
           details=DETAILS)
    return time.perf_counter() - started


def single_writer() -> None:
    latencies = [append_one("single") for _ in range(SINGLE)]
    total = sum(latencies)
    latencies.sort()
    print(
        f"append, 1 writer:  {SINGLE / total:8.0f} events/s   "
        f"p50 {statistics.median(latencies) * 1000:.2f} ms   "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.2f} ms"
    )


def concurrent_writers() -> None:
    barrier = threading.Barrier(WRITERS + 1)

    def work(n: int) -> None:
        barrier.wait()
        for _ in range(PER_WRITER):
            append_one(f"w{n}")
        connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    print(f"append, {WRITERS} writers: {WRITERS * PER_WRITER / elapsed:8.0f} events/s in total")


def verification() -> None:
    started = time.perf_counter()
    result = verify_chain()
    elapsed = time.perf_counter() - started
    assert result.intact, result.broken
    print(f"verify chain:      {result.checked / elapsed:8.0f} events/s "
          f"({result.checked} events in {elapsed:.2f} s)")
    started = time.perf_counter()
    result = verify_trail()
    elapsed = time.perf_counter() - started
    assert result.intact, result.broken
    print(f"verify trail:      {result.checked / elapsed:8.0f} events/s "
          f"({result.checked} events, {result.head_lines} signed head lines in {elapsed:.2f} s)")


def main() -> None:
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        print(f"database: {connection.vendor}  (python {sys.version.split()[0]}, "
              f"{os.cpu_count()} cores), head log fsync {settings.AUDIT_HEAD_LOG_FSYNC}")
        single_writer()
        concurrent_writers()
        verification()
    finally:
        teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    main()
