"""The run command's processes: daphne, a Celery worker and beat, stopped together by Ctrl+C."""

import http.cookiejar
import os
import re
import signal
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth.hashers import make_password

from tests.personas import PASSWORD, totp_code, totp_device
from tests.processes import (
    child_env,
    free_port,
    http_status,
    processes_with_marker,
    start,
    stop,
    wait_until,
)


@pytest.fixture
def portal(tmp_path, transactional_db):
    """The whole portal as real processes on a free port, on the test database."""
    port = free_port()
    env = child_env()
    log = tmp_path / "serve.log"
    process = start(["manage.py", "serve", "--port", str(port), "--concurrency", "1"], env, log)
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_status(f"{base}/healthz") == 200, timeout=60,
               what="/healthz to answer 200", log=log)
    yield {"base": base, "process": process, "marker": env["PORTAL_TEST_MARKER"], "log": log}
    if process.poll() is None:
        stop(process)


def test_ctrl_c_stops_daphne_worker_and_beat_together(portal):
    wait_until(lambda: "beat: Starting" in portal["log"].read_text(), timeout=30,
               what="celery beat to start", log=portal["log"])
    wait_until(lambda: "ready." in portal["log"].read_text(), timeout=30,
               what="the celery worker to be ready", log=portal["log"])
    # serve, daphne, the worker (and its pool child) and beat
    assert len(processes_with_marker(portal["marker"])) >= 4

    assert stop(portal["process"], sig=signal.SIGINT) == 0
    assert processes_with_marker(portal["marker"]) == []
    assert http_status(f"{portal['base']}/healthz") is None
    assert "Stopped daphne, the Celery worker and Celery beat." in portal["log"].read_text()


def test_if_one_process_dies_the_others_are_stopped(portal):
    daphne = [
        pid for pid in processes_with_marker(portal["marker"])
        if b"daphne" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(daphne) == 1
    os.kill(daphne[0], signal.SIGKILL)
    assert portal["process"].wait(timeout=30) == 1
    wait_until(lambda: processes_with_marker(portal["marker"]) == [], timeout=20,
               what="every process to stop")
    assert "daphne exited" in portal["log"].read_text()


class Browser:
    """Just enough of a browser for forms over real HTTP: cookies, redirects, CSRF tokens."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[str, str]:
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.geturl(), response.read().decode()

    def submit(self, path: str, fields: dict) -> tuple[str, str]:
        _url, page = self.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **fields}).encode()
        with self.opener.open(self.base + path, data=data, timeout=10) as response:
            return response.geturl(), response.read().decode()


def test_a_support_user_signs_in_with_password_and_totp_over_daphne(portal, alice):
    # The portal's processes know only the production hashers.
    alice.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    alice.save(update_fields=["password"])
    browser = Browser(portal["base"])
    url, _page = browser.submit("/staff/login/", {"username": "alice", "password": PASSWORD})
    assert url.endswith("/staff/login/code/")
    # The password alone reaches no staff page.
    url, _page = browser.get("/staff/")
    assert "/staff/login/code/" in url

    url, page = browser.submit("/staff/login/code/", {"code": totp_code(totp_device(alice))})
    assert url == portal["base"] + "/staff/"
    assert "alice" in page
