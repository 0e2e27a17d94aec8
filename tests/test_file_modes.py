"""Files with secrets or customers' screens are the portal user's alone: 0600, folders 0700.

Whatever the umask: each test runs with umask 000, under which files would be world-writable
if the modes came from the umask.
"""

import os
import stat
import subprocess
import sys

import pytest

from recordings import format as fmt
from tests.processes import ROOT
from tests.recordings import write_recording
from tests.sessions import waiting_customer


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_a_working_copy_of_a_recording_is_private(alice, settings, office_open, open_umask):
    recording = write_recording(waiting_customer(alice))
    folder = settings.RECORDINGS_DIR / recording.directory
    fmt.write_manifest(folder)
    # The recordings folder, the session's folder and the connection's folder.
    for directory in (settings.RECORDINGS_DIR, folder.parent, folder):
        assert mode(directory) == 0o700, directory
    files = list(folder.iterdir())
    assert any(f.name.endswith(fmt.SEGMENT_SUFFIX) for f in files)
    assert any(f.name == fmt.MANIFEST_NAME for f in files)
    for file in files:
        assert mode(file) == 0o600, file


def test_the_embedded_database_and_its_folder_are_private(tmp_path):
    var = tmp_path / "var"
    code = ("import django; django.setup(); from django.db import connection; "
            "connection.ensure_connection(); connection.cursor().execute('CREATE TABLE t (x)')")
    env = {"PATH": os.environ["PATH"], "PORTAL_VAR_DIR": str(var), "PORTAL_DEBUG": "1",
           "DJANGO_SETTINGS_MODULE": "portal.settings", "LANG": "C.UTF-8"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=60, preexec_fn=lambda: os.umask(0))
    assert result.returncode == 0, result.stderr
    assert mode(var) == 0o700
    assert mode(var / "portal.sqlite3") == 0o600
    assert mode(var / "dev-secret-key") == 0o600
