"""Shipping the head log to a write-once store: each new stretch of lines a new, locked object.

A copy of the head log that nobody on the portal's machines can change or delete is what makes a
truncated local head log visible. Every few minutes (``PORTAL_AUDIT_SHIP_MINUTES``) the lines
added since the last shipment go to the storage ``audit_heads`` as one new object named
``heads/<host>/<first line>-<last line>.log``; objects are never overwritten. In production the
storage is S3 with Object Lock in compliance mode (``WriteOnceS3Storage``). See docs/audit.md.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from storages.backends.s3 import S3Storage

from audit import heads


class WriteOnceS3Storage(S3Storage):
    """S3 objects under Object Lock (compliance mode) for ``retention_days``; never overwritten."""

    def __init__(self, *, retention_days: int = 3650, **options):
        self.retention_days = retention_days
        super().__init__(file_overwrite=False, default_acl=None, **options)

    def get_object_parameters(self, name: str) -> dict:
        parameters = super().get_object_parameters(name)
        parameters["ObjectLockMode"] = "COMPLIANCE"
        parameters["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(
            days=self.retention_days
        )
        return parameters


def _state_path() -> Path:
    # Where the last shipment ended: beside the head log, on the same volume.
    return heads.path().with_name(heads.path().name + ".shipped")


def ship() -> str | None:
    """Ship the head-log lines added since the last shipment; the new object's name, if any."""
    log_path = heads.path()
    if not log_path.exists():
        return None
    state_path = _state_path()
    descriptor = os.open(state_path, os.O_RDWR | os.O_CREAT, 0o640)
    with os.fdopen(descriptor, "r+") as state_file:
        # Two workers shipping at once would ship the same lines twice; harmless, but pointless.
        fcntl.flock(state_file, fcntl.LOCK_EX)
        state = json.loads(state_file.read() or "{}")
        offset = state.get("offset", 0)
        with log_path.open("rb") as log:
            if log.seek(0, os.SEEK_END) < offset:
                offset = 0  # a new head log (key rotation): ship it from its start
            log.seek(offset)
            chunk = log.read()
        chunk = chunk[: chunk.rfind(b"\n") + 1]  # whole lines only
        if not chunk:
            return None
        lines = chunk.splitlines()
        first = heads.parse(lines[0], 1).line_no
        last = heads.parse(lines[-1], len(lines)).line_no
        name = f"heads/{socket.gethostname()}/{first:012d}-{last:012d}.log"
        stored = storages["audit_heads"].save(name, ContentFile(chunk))
        state_file.seek(0)
        state_file.truncate()
        state_file.write(json.dumps({"offset": offset + len(chunk), "last_line": last,
                                     "object": stored}))
        state_file.flush()
        os.fsync(state_file.fileno())
    return stored
