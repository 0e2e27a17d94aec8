"""The run command's processes: daphne, a Celery worker and beat, stopped together by Ctrl+C."""

import os
import signal
from pathlib import Path

import pytest

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
