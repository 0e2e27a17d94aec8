"""Settings from the environment: embedded default, production, and clear refusals."""

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SHOW = (
    "from django.conf import settings as s; "
    "print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], "
    "s.CELERY_BROKER_URL.split(':')[0], s.CACHES['default']['BACKEND'].rsplit('.', 1)[-1])"
)

PRODUCTION = {
    "SECRET_KEY": secrets.token_urlsafe(60),
    "ALLOWED_HOSTS": "portal.bank.example",
    "DATABASE_URL": "postgresql://portal:secret@db.internal:5432/portal",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "PORTAL_TRUSTED_PROXIES": "10.0.0.0/24",
    "PORTAL_RECORDING_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    "PORTAL_RECORDING_MASTER_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    "PORTAL_AUDIT_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    "PORTAL_AUDIT_HEAD_LOG": "/srv/audit-heads/portal.log",
    "PORTAL_AUDIT_S3_BUCKET": "bank-portal-audit-heads",
}
WITHOUT = object()


def run(args: list[str], env: dict, tmp_path) -> subprocess.CompletedProcess:
    """Python in a fresh process with exactly this environment (plus PATH)."""
    base = {"PATH": os.environ["PATH"], "PORTAL_VAR_DIR": str(tmp_path), "LANG": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**base, **env},
        capture_output=True, text=True, timeout=60,
    )


def show_settings(env: dict, tmp_path) -> subprocess.CompletedProcess:
    setup = "import django; django.setup(); "
    return run(["-c", setup + SHOW], {"DJANGO_SETTINGS_MODULE": "portal.settings", **env},
               tmp_path)


def test_the_embedded_default_needs_no_services(tmp_path):
    result = show_settings({"PORTAL_DEBUG": "1"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3", "channels.layers.InMemoryChannelLayer", "filesystem",
        "LocMemCache",
    ]


def test_production_uses_postgresql_and_redis(tmp_path):
    result = show_settings(PRODUCTION, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql", "channels_redis.core.RedisChannelLayer", "redis",
        "RedisCache",
    ]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "SECRET_KEY"),
        ({**PRODUCTION, "SECRET_KEY": "short"}, "SECRET_KEY"),
        ({**PRODUCTION, "ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
        ({**PRODUCTION, "DATABASE_URL": "mysql://db/portal"}, "DATABASE_URL"),
        ({**PRODUCTION, "DATABASE_URL": "postgresql://db:port/portal"}, "DATABASE_URL"),
        ({**PRODUCTION, "REDIS_URL": "http://cache"}, "REDIS_URL"),
        ({**PRODUCTION, "PORTAL_TRUSTED_PROXIES": "10.0.0.0/33"}, "PORTAL_TRUSTED_PROXIES"),
        ({**PRODUCTION, "PORTAL_STAFF_IDLE_MINUTES": "soon"}, "PORTAL_STAFF_IDLE_MINUTES"),
        ({**PRODUCTION, "PORTAL_DEBUG": "maybe"}, "PORTAL_DEBUG"),
        ({**PRODUCTION, "PORTAL_OPENING_HOURS": "weekdays 8-6"}, "PORTAL_OPENING_HOURS"),
        ({**PRODUCTION, "PORTAL_OPENING_HOURS": "mon-fri 18:00-08:00"}, "PORTAL_OPENING_HOURS"),
        ({**PRODUCTION, "PORTAL_HOLIDAY_STATE": "XX"}, "PORTAL_HOLIDAY_STATE"),
        ({**PRODUCTION, "PORTAL_KEY_LIFETIME_MINUTES": "90"}, "PORTAL_KEY_LIFETIME_MINUTES"),
        ({**PRODUCTION, "PORTAL_RECORDING_SIGNING_KEY": WITHOUT}, "PORTAL_RECORDING_SIGNING_KEY"),
        ({**PRODUCTION, "PORTAL_RECORDING_MASTER_KEY": WITHOUT}, "PORTAL_RECORDING_MASTER_KEY"),
        ({**PRODUCTION, "PORTAL_RECORDING_MASTER_KEY": "c2hvcnQ="}, "PORTAL_RECORDING_MASTER_KEY"),
        ({**PRODUCTION, "PORTAL_RECORDING_SIGNING_KEY": "not base64!"},
         "PORTAL_RECORDING_SIGNING_KEY"),
        ({**PRODUCTION, "PORTAL_RECORDING_RETENTION": "standard=10 years"},
         "PORTAL_RECORDING_RETENTION"),
        ({**PRODUCTION, "PORTAL_RECORDING_DEFAULT_CLASS": "gold"},
         "PORTAL_RECORDING_DEFAULT_CLASS"),
        ({**PRODUCTION, "PORTAL_AUDIT_SIGNING_KEY": WITHOUT}, "PORTAL_AUDIT_SIGNING_KEY"),
        ({**PRODUCTION, "PORTAL_AUDIT_SHIP_MINUTES": "90"}, "PORTAL_AUDIT_SHIP_MINUTES"),
        ({**PRODUCTION, "PORTAL_RECORDINGS_MIN_FREE": "plenty"}, "PORTAL_RECORDINGS_MIN_FREE"),
        ({**PRODUCTION, "PORTAL_HEALTHZ_TOKEN": "short"}, "PORTAL_HEALTHZ_TOKEN"),
        ({**PRODUCTION, "PORTAL_DB_POOL_MAX_SIZE": "many"}, "PORTAL_DB_POOL_MAX_SIZE"),
    ],
)
def test_a_missing_or_malformed_value_stops_the_start_and_names_it(tmp_path, env, named):
    result = show_settings({k: v for k, v in env.items() if v is not WITHOUT}, tmp_path)
    assert result.returncode != 0
    assert f"Environment variable {named}:" in result.stderr


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION,
                 tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_tls_is_switched_off(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                 {**PRODUCTION, "PORTAL_TLS": "0"}, tmp_path)
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("unset", "warning"),
    [("PORTAL_AUDIT_S3_BUCKET", "audit.W001"), ("PORTAL_AUDIT_HEAD_LOG", "audit.W002")],
)
def test_check_deploy_warns_when_the_head_log_stays_on_the_machine(tmp_path, unset, warning):
    env = {k: v for k, v in PRODUCTION.items() if k != unset}
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)
    assert result.returncode != 0
    assert warning in result.stderr + result.stdout


def test_demo_refuses_with_debug_off(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    result = run(["manage.py", "demo"], env, tmp_path)
    assert result.returncode != 0
    assert "refuses to run with debug off" in result.stderr
