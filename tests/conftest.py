import os
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache

from tests.personas import PERSONAS, make_staff

# portal.asgi is imported here without a database; its start checks run in real daphne processes
# (tests/processes.py's child_env drops this marker).
os.environ["PORTAL_IN_PROCESS_TESTS"] = "1"

# Real-browser fixtures: live_portal, browser, page (see tests/browser.py).
pytest_plugins = ["tests.browser"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache; every test starts with none."""
    if "RedisCache" in settings.CACHES["default"]["BACKEND"]:
        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(match=f"{settings.CACHE_PREFIX}:1:*"):
            client.delete(key)
    else:
        cache.clear()
    yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Fast hashes for the personas; PBKDF2 stays available for real processes."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


@pytest.fixture(autouse=True)
def _own_audit_files(settings, tmp_path, monkeypatch):
    """Each test anchors the audit chain, logs its heads and ships them in its own files; the
    processes a test starts (their environment is copied from this one) too."""
    files = {
        "PORTAL_AUDIT_ANCHOR_FILE": tmp_path / "audit-anchors.log",
        "PORTAL_AUDIT_HEAD_LOG": tmp_path / "audit-heads.log",
        "PORTAL_AUDIT_SHIP_DIR": tmp_path / "audit-heads-shipped",
    }
    for name, path in files.items():
        monkeypatch.setenv(name, str(path))
    settings.AUDIT_ANCHOR_FILE = str(files["PORTAL_AUDIT_ANCHOR_FILE"])
    settings.AUDIT_HEAD_LOG = str(files["PORTAL_AUDIT_HEAD_LOG"])
    # Like the fast password hashes: no fsync per audited commit on the shared test machine
    # (tests/test_audit_chain.py switches it back on where the head log itself is tested).
    settings.AUDIT_HEAD_LOG_FSYNC = False
    monkeypatch.setenv("PORTAL_AUDIT_HEAD_LOG_FSYNC", "0")
    settings.STORAGES = {
        **settings.STORAGES,
        "audit_heads": {**settings.STORAGES["audit_heads"],
                        "OPTIONS": {**settings.STORAGES["audit_heads"]["OPTIONS"],
                                    "location": str(files["PORTAL_AUDIT_SHIP_DIR"])}},
    }


@pytest.fixture(autouse=True)
def _own_recordings_dir(settings, tmp_path):
    """Each test's live sessions record into its own folder and archive into another."""
    settings.RECORDINGS_DIR = tmp_path / "recordings"
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {**settings.STORAGES["recordings"],
                       "OPTIONS": {**settings.STORAGES["recordings"]["OPTIONS"],
                                   "location": str(tmp_path / "archive")}},
    }


@pytest.fixture
def english(client):
    """A browser set to English, so that tests read like the messages in the code."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


@pytest.fixture
def alice(db):
    return make_staff("alice", PERSONAS["alice"])


@pytest.fixture
def bob(db):
    return make_staff("bob", PERSONAS["bob"])


@pytest.fixture
def carol(db):
    return make_staff("carol", PERSONAS["carol"])


@pytest.fixture
def dave(db):
    return make_staff("dave", PERSONAS["dave"])


@pytest.fixture
def english_messages():
    """Messages raised outside a request in English, so that tests read like the code."""
    from django.utils import translation

    with translation.override("en"):
        yield


# A Wednesday morning without holidays: the service is open.
OPEN_MOMENT = datetime(2026, 12, 2, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.fixture
def office_open():
    """The clock stands at a Wednesday 10:00 in Berlin and runs on from there."""
    with time_machine.travel(OPEN_MOMENT, tick=True) as traveller:
        yield traveller


@pytest.fixture
async def thread_connections_closed():
    """Async tests ran the ORM in sync_to_async's thread: close that thread's connections."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture(autouse=True)
def _own_channel_layer():
    """Each test gets a channel layer instance of its own: a socket that a failed test left
    waiting would otherwise hold channels-redis's receive lock, bound to that test's event loop,
    and fail every later test (and leave the in-memory layer's messages behind)."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
