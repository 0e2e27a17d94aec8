"""Free space of the recordings folder: /healthz fails and an alert goes out before it runs out.

On a real 2 MiB filesystem (tmpfs, when the tests run as root) filled past the minimum, and on
the real disk with a minimum above its free space.
"""

import logging
import os
import shutil
import subprocess

import pytest

from audit.event_types import EventType
from audit.models import AuditEvent
from recordings import disk_space, tasks

MiB = 1024 * 1024


def alerts() -> int:
    return AuditEvent.objects.filter(event_type=EventType.RECORDINGS_DISK_LOW).count()


@pytest.fixture
def small_filesystem(tmp_path, settings):
    """The recordings folder on a 2 MiB tmpfs of its own, with a minimum of 1 MiB free."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if os.geteuid() != 0 or subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
    ).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    settings.RECORDINGS_DIR = mount_point / "recordings"
    settings.RECORDINGS_MIN_FREE = ("bytes", float(MiB))
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_a_filling_recordings_folder_fails_healthz_and_alerts_once(client, db, small_filesystem,
                                                                  caplog):
    assert client.get("/healthz").status_code == 200
    assert alerts() == 0
    # A recording fills the filesystem past the minimum.
    (small_filesystem / "recording.bin").write_bytes(b"\0" * (1536 * 1024))
    with caplog.at_level(logging.ERROR, logger="portal.security"):
        response = client.get("/healthz")
        assert response.status_code == 503
        check = response.json()["checks"]["recordings_free_space"]
        assert check["ok"] is False and check["free_bytes"] < check["min_free_bytes"] == MiB
        # Asked again, and by the beat task: still failing, but alerted only once.
        assert client.get("/healthz").status_code == 503
        assert tasks.watch_free_space() is False
    assert alerts() == 1
    assert [r.levelname for r in caplog.records if "PORTAL_RECORDINGS_MIN_FREE" in r.message] \
        == ["ERROR"]
    # Space freed: healthy again.
    (small_filesystem / "recording.bin").unlink()
    assert client.get("/healthz").status_code == 200


def test_a_minimum_above_the_free_space_fails_healthz(client, db, settings):
    free = shutil.disk_usage(settings.RECORDINGS_DIR.parent).free
    settings.RECORDINGS_MIN_FREE = ("bytes", float(free + 1024**4))
    response = client.get("/healthz", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 503 and response.json() == {"status": "fail"}
    assert alerts() == 1
    settings.RECORDINGS_MIN_FREE = ("percent", 0.0)
    assert client.get("/healthz").status_code == 200


def test_the_beat_task_alerts_when_the_space_is_low(db, settings):
    settings.RECORDINGS_MIN_FREE = ("percent", 99.999)
    assert tasks.watch_free_space() is False
    assert tasks.watch_free_space() is False
    assert alerts() == 1
    [event] = AuditEvent.objects.filter(event_type=EventType.RECORDINGS_DISK_LOW)
    assert event.details["free_bytes"] < event.details["min_free_bytes"]


def test_the_minimum_is_read_as_a_percentage_or_a_size(monkeypatch):
    from portal.environment import env_free_space

    monkeypatch.setenv("PORTAL_RECORDINGS_MIN_FREE", "20G")
    assert env_free_space("PORTAL_RECORDINGS_MIN_FREE", "5%") == ("bytes", 20.0 * 1024**3)
    monkeypatch.setenv("PORTAL_RECORDINGS_MIN_FREE", "2.5%")
    assert env_free_space("PORTAL_RECORDINGS_MIN_FREE", "5%") == ("percent", 2.5)
    monkeypatch.delenv("PORTAL_RECORDINGS_MIN_FREE")
    assert disk_space.measure().min_free_bytes > 0
