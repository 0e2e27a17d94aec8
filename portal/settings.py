"""Settings for the Fernwartung Portal, read from the environment.

With no environment at all the portal runs embedded: SQLite, the in-memory channel layer and a
Celery broker on the filesystem, all under ``var/``. With ``DATABASE_URL`` and ``REDIS_URL`` it
runs on PostgreSQL and Redis. See ``docs/configuration.md`` for every variable.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import holidays
from celery.schedules import crontab
from csp.constants import NONE, SELF

from portal.environment import (
    database_from_url,
    env_bool,
    env_free_space,
    env_int,
    env_key,
    env_list,
    env_networks,
    env_opening_hours,
    env_retention,
    env_str,
    fail,
    redis_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var")))
# Working data (the embedded database with TOTP keys, recordings in progress, generated keys):
# the portal's user alone, whatever the umask.
VAR_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
VAR_DIR.chmod(0o700)

# Debug is for a developer's own machine only: the run command switches it on and binds
# daphne to 127.0.0.1.
DEBUG = env_bool("PORTAL_DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key is None:
        if not DEBUG:
            raise fail("SECRET_KEY", "required when PORTAL_DEBUG is off (50+ random characters)")
        key_file = VAR_DIR / "dev-secret-key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(64))
            key_file.chmod(0o600)
        return key_file.read_text().strip()
    if not DEBUG and (len(key) < 50 or key.startswith("django-insecure")):
        raise fail("SECRET_KEY", "must be at least 50 random characters in production")
    return key


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not ALLOWED_HOSTS:
    raise fail("ALLOWED_HOSTS", "required when PORTAL_DEBUG is off (e.g. portal.bank.example)")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "portal.views.csrf_failure"

INSTALLED_APPS = [
    "daphne",
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "auditlog",
    "portal.apps.PortalConfig",
    "audit.apps.AuditConfig",
    "sessions_app.apps.SessionsAppConfig",
    "consent.apps.ConsentConfig",
    "recordings.apps.RecordingsConfig",
    "live.apps.LiveConfig",
]

MIDDLEWARE = [
    "portal.client_ip.ForwardedProtoMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "portal.languages.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.staff_access.StaffIdleTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.request_audit.AuditlogContextMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")
# PostgreSQL connections one process holds at most (psycopg's pool); a request that finds them
# all busy waits up to the timeout, then fails alone. 0: no pool, a connection per request.
DB_POOL_MAX_SIZE = env_int("PORTAL_DB_POOL_MAX_SIZE", 10, minimum=0, maximum=500)
DB_POOL_TIMEOUT = env_int("PORTAL_DB_POOL_TIMEOUT_SECONDS", 20, minimum=1, maximum=300)
if DATABASE_URL:
    DATABASES = {"default": database_from_url("DATABASE_URL", DATABASE_URL)}
    if DB_POOL_MAX_SIZE:
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": min(2, DB_POOL_MAX_SIZE),
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": DB_POOL_TIMEOUT,
        }
else:
    SQLITE_PATH = Path(env_str("PORTAL_SQLITE_PATH", str(VAR_DIR / "portal.sqlite3")))
    # Created here with mode 0600 (SQLite would take the umask's); its journals copy the mode.
    if str(SQLITE_PATH) != ":memory:":
        os.close(os.open(SQLITE_PATH, os.O_RDWR | os.O_CREAT, 0o600))
        SQLITE_PATH.chmod(0o600)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(SQLITE_PATH),
            # IMMEDIATE takes the write lock at BEGIN, so audit appends are serialized.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
            # A file, not memory, so that test worker processes share the test database.
            "TEST": {"NAME": str(VAR_DIR / "test-portal.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker --------------------------------------------

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    redis_url("REDIS_URL", REDIS_URL)
CACHE_PREFIX = env_str("PORTAL_CACHE_PREFIX", "portal")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_PREFIX,
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # channels-redis blocks 5 s per read; redis-py 8 times reads out after 5 s
                # unless told otherwise, which closed idle sockets with 1011.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": f"{CACHE_PREFIX}:asgi",
                # Per channel; all sockets of one daphne process share one inbox.
                "capacity": 500,
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{CACHE_PREFIX}:celery:"}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_QUEUE_DIR = VAR_DIR / "celery-queue"
    CELERY_QUEUE_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR),
        "data_folder_out": str(CELERY_QUEUE_DIR),
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
    }

CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "expire-keys-and-sessions": {
        "task": "sessions_app.tasks.expire_overdue",
        "schedule": 60.0,
    },
    "verify-audit-chain-nightly": {
        "task": "audit.tasks.verify_audit_chain",
        "schedule": crontab(hour=2, minute=30),
    },
    "recover-left-recordings": {
        "task": "recordings.tasks.recover_recordings",
        "schedule": 60.0,
    },
    "purge-expired-recordings": {
        "task": "recordings.tasks.purge_expired",
        "schedule": crontab(hour=3, minute=0),
    },
    "watch-recordings-free-space": {
        "task": "recordings.tasks.watch_free_space",
        "schedule": 60.0,
    },
    "verify-recording-sample-nightly": {
        "task": "recordings.tasks.verify_sample",
        "schedule": crontab(hour=3, minute=30),
    },
    "expire-enrolment-codes-and-role-requests": {
        "task": "portal.tasks.expire_enrolment_codes_and_role_requests",
        "schedule": 300.0,
    },
}

# --- Authentication and staff sessions -----------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "staff-login"
LOGIN_REDIRECT_URL = "staff-home"
OTP_TOTP_ISSUER = env_str("PORTAL_OTP_ISSUER", "Fernwartung Portal")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # no TOTP keys or backup codes in the admin

# Staff sessions end after this many seconds without a request.
STAFF_IDLE_TIMEOUT = env_int("PORTAL_STAFF_IDLE_MINUTES", 15, minimum=1, maximum=480) * 60
SESSION_COOKIE_AGE = 12 * 60 * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Failed passwords and codes: at most this many per user and per address in the window.
SIGNIN_FAILURES_PER_USER = env_int("PORTAL_SIGNIN_FAILURES_PER_USER", 5, minimum=1)
SIGNIN_FAILURES_PER_IP = env_int("PORTAL_SIGNIN_FAILURES_PER_IP", 20, minimum=1)
SIGNIN_FAILURE_WINDOW = env_int("PORTAL_SIGNIN_WINDOW_MINUTES", 15, minimum=1) * 60
BACKUP_CODE_COUNT = 10
# An enrolment code an administrator hands out works once, for this many hours; a role change
# request that needs a second administrator waits this many days for the decision.
ENROLMENT_CODE_HOURS = env_int("PORTAL_ENROLMENT_CODE_HOURS", 24, minimum=1, maximum=24 * 14)
ROLE_REQUEST_DAYS = env_int("PORTAL_ROLE_REQUEST_DAYS", 7, minimum=1, maximum=90)

# Wrong session keys: at most this many per address in the window; past the alarm threshold
# of wrong keys from all addresses within one minute, an alarm event is written.
KEY_FAILURES_PER_IP = env_int("PORTAL_KEY_FAILURES_PER_IP", 5, minimum=1)
KEY_FAILURE_WINDOW = env_int("PORTAL_KEY_FAILURE_WINDOW_MINUTES", 15, minimum=1) * 60
KEY_FAILURE_ALARM_PER_MINUTE = env_int("PORTAL_KEY_FAILURE_ALARM_PER_MINUTE", 30, minimum=1)
# Past KEY_FAILURES_GLOBAL wrong keys from all addresses within one global window (fixed, on
# the clock), key entry stops for everyone until that window ends; an adviser can let their
# customer's browser past the blocks for the lift time (docs/consent.md: the numbers).
KEY_FAILURES_GLOBAL = env_int("PORTAL_KEY_FAILURES_GLOBAL", 30, minimum=1)
KEY_GLOBAL_WINDOW = env_int("PORTAL_KEY_GLOBAL_WINDOW_MINUTES", 60, minimum=1) * 60
KEY_BLOCK_LIFT = env_int("PORTAL_KEY_BLOCK_LIFT_MINUTES", 10, minimum=1, maximum=60) * 60
# The live session (docs/protocol.md): the largest message in bytes (daphne allows 1 MiB), the
# messages per second one socket may send, how often clients send a heartbeat, how long a lost
# customer may take to come back before the session ends, and how many bytes of screen a viewer
# may have unacknowledged before tiles are dropped in favour of a fresh keyframe.
LIVE_MAX_MESSAGE_BYTES = env_int("PORTAL_LIVE_MAX_MESSAGE_BYTES", 512 * 1024, minimum=64 * 1024,
                                 maximum=1024 * 1024 - 1024)
LIVE_MAX_MESSAGES_PER_SECOND = env_int("PORTAL_LIVE_MAX_MESSAGES_PER_SECOND", 200, minimum=10)
LIVE_HEARTBEAT_SECONDS = env_int("PORTAL_LIVE_HEARTBEAT_SECONDS", 5, minimum=1)
LIVE_GRACE_SECONDS = env_int("PORTAL_LIVE_GRACE_SECONDS", 30, minimum=5)
LIVE_VIEWER_WINDOW_BYTES = env_int("PORTAL_LIVE_VIEWER_WINDOW_BYTES", 2 * 1024 * 1024,
                                   minimum=256 * 1024)
# A tile that waited longer than this in the server is dropped for a fresh keyframe.
LIVE_MAX_TILE_AGE_SECONDS = env_int("PORTAL_LIVE_MAX_TILE_AGE_MS", 1000, minimum=100) / 1000
if LIVE_VIEWER_WINDOW_BYTES < LIVE_MAX_MESSAGE_BYTES:
    raise fail("PORTAL_LIVE_VIEWER_WINDOW_BYTES",
               "must be at least PORTAL_LIVE_MAX_MESSAGE_BYTES, or a keyframe could never pass")
# Byte quota (docs/protocol.md): what one live socket may send per second (averaged, bursts
# of two seconds' worth; 8 MiB/s is several times a busy 1920x1080 screen), and what one
# session's customer may send in all its connections together; either closes with 4420.
# How often a staff socket re-checks its sign-in (signed out, idle, deactivated: close 4401).
LIVE_MAX_BYTES_PER_SECOND = env_int("PORTAL_LIVE_MAX_BYTES_PER_SECOND", 8 * 1024 * 1024,
                                    minimum=256 * 1024)
LIVE_MAX_SESSION_BYTES = env_int("PORTAL_LIVE_MAX_SESSION_BYTES", 4 * 1024**3,
                                 minimum=16 * 1024 * 1024)
STAFF_SOCKET_RECHECK_SECONDS = env_int("PORTAL_STAFF_SOCKET_RECHECK_SECONDS", 20, minimum=1,
                                       maximum=300)
# How often every live socket re-reads its session's state from the database: the channel
# layer's news reaches only the sockets of its own process on the in-memory layer (a Celery
# task's "connection lost" included), the database reaches them all.
LIVE_STATE_RECHECK_SECONDS = env_int("PORTAL_LIVE_STATE_RECHECK_SECONDS", 2, minimum=1,
                                     maximum=60)
if LIVE_MAX_BYTES_PER_SECOND * 2 < LIVE_MAX_MESSAGE_BYTES:
    raise fail("PORTAL_LIVE_MAX_BYTES_PER_SECOND",
               "must be at least half of PORTAL_LIVE_MAX_MESSAGE_BYTES, or a keyframe could "
               "never pass")
# Recordings of live sessions (docs/recording-format.md): where the relay writes them while
# the session runs, and whether staff keystrokes are kept with their keys (works-council rule:
# by default only "a key was pressed" is recorded).
RECORDINGS_DIR = Path(env_str("PORTAL_RECORDINGS_DIR", str(VAR_DIR / "recordings")))
# Below this much free space in RECORDINGS_DIR (a percentage of its filesystem, or a size such
# as 20G) /healthz fails and an alert is raised, before a full disk fails every session.
RECORDINGS_MIN_FREE = env_free_space("PORTAL_RECORDINGS_MIN_FREE", "5%")
RECORD_STAFF_KEYS = env_bool("PORTAL_RECORD_STAFF_KEYS", False)


def _recording_key(name: str, purpose: str) -> bytes:
    # Keys for recordings must never change with SECRET_KEY: archives outlive it by years.
    key = env_key(name)
    if key is None:
        if not DEBUG:
            raise fail(name, "required when PORTAL_DEBUG is off: 32 random bytes in base64 "
                             "(`manage.py recording_keys` makes a pair)")
        key_file = VAR_DIR / f"dev-recording-{purpose}-key"
        if not key_file.exists():
            key_file.write_bytes(secrets.token_bytes(32))
            key_file.chmod(0o600)
        key = key_file.read_bytes()
    return key


# The archive (docs/recording-archive.md): manifests are signed with Ed25519 (the private key's
# 32-byte seed), and each recording's data key is wrapped by the master key (AES-256).
RECORDING_SIGNING_KEY = _recording_key("PORTAL_RECORDING_SIGNING_KEY", "signing")
RECORDING_MASTER_KEY = _recording_key("PORTAL_RECORDING_MASTER_KEY", "master")
# How long an archived recording is kept, per recording class; every recording gets the default
# class unless the session names another. The default class's period is what published terms
# promise customers (terms version 1: 24 months); a recording of that class is kept as long as
# the terms version its customer accepted says, and daphne refuses to start while the current
# terms and this setting disagree (consent/checks.py).
RECORDING_RETENTION = env_retention("PORTAL_RECORDING_RETENTION", "standard=24m")
RECORDING_DEFAULT_CLASS = env_str("PORTAL_RECORDING_DEFAULT_CLASS", "standard")
if RECORDING_DEFAULT_CLASS not in RECORDING_RETENTION:
    raise fail("PORTAL_RECORDING_DEFAULT_CLASS",
               f"{RECORDING_DEFAULT_CLASS!r} is not a class of PORTAL_RECORDING_RETENTION")
# A recording the relay has not written to for this long is taken as left behind by a crashed
# relay process and finalized (a live one writes a checkpoint at least every 5 s of heartbeat).
RECORDING_STALE_SECONDS = env_int("PORTAL_RECORDING_STALE_SECONDS", 120, minimum=30)
# How many archived recordings the nightly check reads back in full.
RECORDING_VERIFY_SAMPLE = env_int("PORTAL_RECORDING_VERIFY_SAMPLE", 5, minimum=1)
ARCHIVE_S3_BUCKET = env_str("PORTAL_ARCHIVE_S3_BUCKET")
# Requests per address and minute on the public customer pages.
CUSTOMER_REQUESTS_PER_MINUTE = env_int("PORTAL_CUSTOMER_REQUESTS_PER_MINUTE", 120, minimum=10)

# X-Forwarded-For is believed only from these proxy addresses (comma-separated IPs or CIDRs).
TRUSTED_PROXIES = env_networks("PORTAL_TRUSTED_PROXIES")
# /healthz shows its details only to loopback addresses and to requests with this bearer token;
# everyone else gets the status code and {"status": "ok"|"fail"}.
HEALTHZ_TOKEN = env_str("PORTAL_HEALTHZ_TOKEN")
if HEALTHZ_TOKEN is not None and len(HEALTHZ_TOKEN) < 20:
    raise fail("PORTAL_HEALTHZ_TOKEN", "must be at least 20 random characters")

# After each verification the chain's head is appended here (ship it to write-once storage).
AUDIT_ANCHOR_FILE = env_str("PORTAL_AUDIT_ANCHOR_FILE", str(VAR_DIR / "audit-anchors.log"))
# The nightly verification must be younger than this, or /healthz reports the audit as stale.
AUDIT_VERIFICATION_MAX_AGE = env_int("PORTAL_AUDIT_VERIFY_MAX_AGE_HOURS", 48, minimum=1) * 3600

# --- Support sessions and keys ------------------------------------------------------------

# Weekly opening hours in TIME_ZONE; public holidays of HOLIDAY_STATE and the closed days
# administrators enter in the admin are closed all day.
OPENING_HOURS = env_opening_hours("PORTAL_OPENING_HOURS", "mon-fri 08:00-18:00")
HOLIDAY_STATE = env_str("PORTAL_HOLIDAY_STATE", "NW")  # "none": open on public holidays too
if HOLIDAY_STATE != "none" and HOLIDAY_STATE not in holidays.Germany.subdivisions:
    raise fail("PORTAL_HOLIDAY_STATE",
               f"unknown German state {HOLIDAY_STATE!r}; e.g. NW, BY, BE, or none")
# A key's lifetime: the default offered when issuing, and the administrator's maximum.
KEY_LIFETIME_MAX = env_int("PORTAL_KEY_LIFETIME_MAX_MINUTES", 60, minimum=1, maximum=24 * 60)
KEY_LIFETIME_DEFAULT = env_int(
    "PORTAL_KEY_LIFETIME_MINUTES", 15, minimum=1, maximum=KEY_LIFETIME_MAX
)
# The secret under which session keys are stored (HMAC-SHA256); derived from SECRET_KEY if unset.
SESSION_KEY_SECRET = env_str("PORTAL_KEY_SECRET") or hashlib.sha256(
    f"fernwartung-session-keys:{SECRET_KEY}".encode()
).hexdigest()

# --- django-auditlog -----------------------------------------------------------------------

AUDITLOG_INCLUDE_ALL_MODELS = True
AUDITLOG_EXCLUDE_TRACKING_MODELS = (
    "audit.auditevent",  # append-only and hash-chained itself; see docs/audit.md
    "sessions",
    "contenttypes",
    "admin.logentry",
)
# Secrets and per-login bookkeeping stay out of the change log.
AUDITLOG_EXCLUDE_TRACKING_FIELDS = (
    "password",
    "last_login",
    "key",
    "key_hmac",
    "token",
    "last_t",
    "drift",
    "last_used_at",
    "throttling_failure_timestamp",
    "throttling_failure_count",
)

# --- Security headers ----------------------------------------------------------------------

USE_TLS = env_bool("PORTAL_TLS", not DEBUG)
SECURE_SSL_REDIRECT = USE_TLS
SESSION_COOKIE_SECURE = USE_TLS
CSRF_COOKIE_SECURE = USE_TLS
SECURE_HSTS_SECONDS = env_int("PORTAL_HSTS_SECONDS", 31536000) if USE_TLS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = USE_TLS
SECURE_HSTS_PRELOAD = USE_TLS and env_bool("PORTAL_HSTS_PRELOAD", True)
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if TRUSTED_PROXIES:
    # Behind a trusted TLS-terminating proxy, believe its X-Forwarded-Proto (and only its:
    # portal.client_ip.ForwardedProtoMiddleware drops the header from any other peer).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# No inline scripts, styles or handlers anywhere: scripts, styles and connections (including
# the live WebSockets, which 'self' covers) from our own origin only; images also from data:
# and blob: URLs (the live screen and the player draw decoded tiles).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
    },
}

# --- Languages and time --------------------------------------------------------------------

LANGUAGE_CODE = "de"
LANGUAGES = [("de", "Deutsch"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("PORTAL_TIME_ZONE", "Europe/Berlin")
USE_I18N = True
USE_TZ = True
CELERY_TIMEZONE = TIME_ZONE

# --- Static files --------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # Archived recordings and exports: encrypted blobs (docs/recording-archive.md).
    "recordings": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": env_str("PORTAL_ARCHIVE_DIR", str(VAR_DIR / "archive")),
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
        },
    },
}
if ARCHIVE_S3_BUCKET:
    # S3-compatible object storage through django-storages; the credentials come from the
    # usual AWS_* environment variables.
    STORAGES["recordings"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": ARCHIVE_S3_BUCKET,
            "endpoint_url": env_str("PORTAL_ARCHIVE_S3_ENDPOINT"),
            "region_name": env_str("PORTAL_ARCHIVE_S3_REGION"),
            "location": env_str("PORTAL_ARCHIVE_S3_PREFIX", ""),
            "file_overwrite": True,
            "default_acl": None,
        },
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("PORTAL_LOG_LEVEL", "INFO")},
}

# --- The audit trail outside the database (docs/audit.md) ----------------------------------

# Every commit that appends audit events appends the chain's new head, Ed25519-signed, to this
# append-only file (put it on another volume), flushed and by default fsynced line by line.
AUDIT_HEAD_LOG = env_str("PORTAL_AUDIT_HEAD_LOG", str(VAR_DIR / "audit-heads.log"))
AUDIT_HEAD_LOG_FSYNC = env_bool("PORTAL_AUDIT_HEAD_LOG_FSYNC", True)
AUDIT_SIGNING_KEY = _recording_key("PORTAL_AUDIT_SIGNING_KEY", "audit-signing")
# New head-log lines are shipped this often, each shipment a new object in the write-once
# store "audit_heads": S3 with Object Lock (compliance mode) in production.
AUDIT_SHIP_MINUTES = env_int("PORTAL_AUDIT_SHIP_MINUTES", 5, minimum=1, maximum=60)
CELERY_BEAT_SCHEDULE["ship-audit-head-log"] = {
    "task": "audit.tasks.ship_head_log",
    "schedule": AUDIT_SHIP_MINUTES * 60.0,
}
AUDIT_S3_BUCKET = env_str("PORTAL_AUDIT_S3_BUCKET")
STORAGES["audit_heads"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {
        "location": env_str("PORTAL_AUDIT_SHIP_DIR", str(VAR_DIR / "audit-heads-shipped")),
        "file_permissions_mode": 0o400,
        "directory_permissions_mode": 0o700,
    },
}
if AUDIT_S3_BUCKET:
    STORAGES["audit_heads"] = {
        "BACKEND": "audit.shipping.WriteOnceS3Storage",
        "OPTIONS": {
            "bucket_name": AUDIT_S3_BUCKET,
            "endpoint_url": env_str("PORTAL_AUDIT_S3_ENDPOINT"),
            "region_name": env_str("PORTAL_AUDIT_S3_REGION"),
            "location": env_str("PORTAL_AUDIT_S3_PREFIX", ""),
            "retention_days": env_int("PORTAL_AUDIT_S3_RETENTION_DAYS", 3650, minimum=1),
        },
    }
# Security events (SECURITY_EVENT_LEVELS in audit/security_events.py) as JSON lines on stderr.
LOGGING["formatters"]["json"] = {"()": "audit.security_log.JsonLinesFormatter"}
LOGGING["handlers"]["security"] = {"class": "logging.StreamHandler", "formatter": "json"}
LOGGING["loggers"] = {
    **LOGGING.get("loggers", {}),
    "portal.security": {"handlers": ["security"], "level": "INFO", "propagate": False},
}
