"""Free space of the recordings folder: below PORTAL_RECORDINGS_MIN_FREE, /healthz fails and an
alert is raised (an audit event and an error log line, at most once per ALERT_INTERVAL)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import cache

from audit.event_types import EventType
from audit.events import Actor, record

logger = logging.getLogger("portal.security")

ALERT_INTERVAL = 15 * 60  # seconds between two alerts while the space stays low
ALERT_KEY = "recordings:disk-low-alert"


@dataclass(frozen=True)
class FreeSpace:
    free_bytes: int
    total_bytes: int
    min_free_bytes: int

    @property
    def low(self) -> bool:
        return self.free_bytes < self.min_free_bytes

    def as_dict(self) -> dict:
        return {"ok": not self.low, "free_bytes": self.free_bytes,
                "min_free_bytes": self.min_free_bytes}


def measure(directory: Path | None = None) -> FreeSpace:
    """Free space of the filesystem that holds the recordings folder (or its nearest parent)."""
    path = Path(directory or settings.RECORDINGS_DIR)
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    kind, amount = settings.RECORDINGS_MIN_FREE
    minimum = usage.total * amount / 100 if kind == "percent" else amount
    return FreeSpace(free_bytes=usage.free, total_bytes=usage.total, min_free_bytes=int(minimum))


def watch() -> FreeSpace:
    """Measure; when low, alert unless an alert went out within ALERT_INTERVAL."""
    space = measure()
    if space.low and cache.add(ALERT_KEY, 1, timeout=ALERT_INTERVAL):
        details = {"directory": str(settings.RECORDINGS_DIR), "free_bytes": space.free_bytes,
                   "min_free_bytes": space.min_free_bytes, "total_bytes": space.total_bytes}
        record(event_type=EventType.RECORDINGS_DISK_LOW, actor=Actor.system("disk"),
               details=details)
        logger.error("Free space of the recordings folder %s is %d bytes, below the minimum of "
                     "%d (PORTAL_RECORDINGS_MIN_FREE)", settings.RECORDINGS_DIR,
                     space.free_bytes, space.min_free_bytes)
    return space
