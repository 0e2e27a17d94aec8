"""PostgreSQL connections: a daphne process holds at most PORTAL_DB_POOL_MAX_SIZE of them.

Under ASGI every request runs in a thread of its own; with persistent connections each thread
kept one, and about 100 concurrent requests used up the server's connections for a minute.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from tests.processes import child_env, free_port, http_status, start, stop, wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif("connection.vendor != 'postgresql'",
                       reason="the pool is PostgreSQL's (psycopg)"),
]

POOL_SIZE = 5
BURST = 300


def _get(url: str) -> int | str:
    try:
        with urllib.request.urlopen(url, timeout=40) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError as error:
        return type(error).__name__


def _connections(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                       [application_name])
        return cursor.fetchone()[0]


@pytest.fixture
def pooled_daphne(transactional_db, tmp_path):
    """A real daphne process on the test database, its connections named for counting."""
    name = f"portal-burst-{uuid.uuid4().hex[:8]}"
    env = child_env(PORTAL_DB_POOL_MAX_SIZE=str(POOL_SIZE),
                    PORTAL_CUSTOMER_REQUESTS_PER_MINUTE="100000")
    env["DATABASE_URL"] += f"?application_name={name}"
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    port, log = free_port(), tmp_path / "daphne.log"
    process = start(["-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                     "portal.asgi:application"], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or http_status(url + "/healthz") == 200,
                   timeout=60, what="daphne to answer on /healthz", log=log)
        assert process.poll() is None, log.read_text()
        yield url, name
    finally:
        stop(process)


def test_300_concurrent_requests_stay_within_the_pool_and_every_page_answers(pooled_daphne):
    url, name = pooled_daphne
    start_line = threading.Barrier(BURST)

    def one(_):
        start_line.wait(timeout=30)
        return _get(url + "/")

    peak, during = 0, []
    started = time.monotonic()
    with ThreadPoolExecutor(BURST) as burst:
        answers = [burst.submit(one, n) for n in range(BURST)]
        # Meanwhile: count the process's connections, and ask for other pages.
        while not all(answer.done() for answer in answers) and time.monotonic() - started < 45:
            peak = max(peak, _connections(name))
            if not during and time.monotonic() - started > 1:
                during = [_get(url + "/healthz"), _get(url + "/staff/login/")]
            time.sleep(0.05)
        codes = [answer.result() for answer in answers]
    peak = max(peak, _connections(name))

    assert time.monotonic() - started < 50
    assert codes.count(200) == BURST, {code: codes.count(code) for code in set(codes)}
    assert during == [200, 200]
    assert 0 < peak <= POOL_SIZE
    assert _get(url + "/healthz") == 200 and _get(url + "/staff/login/") == 200
    assert _connections(name) <= POOL_SIZE
