"""Real processes for tests: Celery workers and the whole portal, on the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def child_env(**extra: str) -> dict[str, str]:
    """This test run's environment, pointed at the test database, with a marker to find it."""
    env = dict(os.environ)
    env.pop("PORTAL_IN_PROCESS_TESTS", None)
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
        env["DATABASE_URL"] = f"postgresql://{db['USER']}@{host}:{port}/{db['NAME']}"
    else:
        env["PORTAL_SQLITE_PATH"] = str(db["NAME"])
    env["PORTAL_TEST_MARKER"] = uuid.uuid4().hex
    env.update(extra)
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def celery_worker(name: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """A real Celery worker process (one at a time, solo pool) on this test run's broker."""
    return start(
        ["-m", "celery", "-A", "portal", "worker", "--pool=solo", "--loglevel=INFO",
         "--without-mingle", "--without-gossip", f"--hostname={name}@%h"],
        env, log,
    )


def processes_with_marker(marker: str) -> list[int]:
    """Pids of live processes started with this PORTAL_TEST_MARKER."""
    needle = f"PORTAL_TEST_MARKER={marker}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().split(")")[-1].split()[0]
                if state != "Z":
                    pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, *, timeout: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    output = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{output}")


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None
