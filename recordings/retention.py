"""How long recordings are kept: a period per recording class, from the settings."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from django.conf import settings


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` later; the month's last day where that day is missing."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def retention_until(start: datetime, recording_class: str) -> datetime:
    """When a recording of this class, started at ``start``, may be purged."""
    amount, unit = settings.RECORDING_RETENTION[recording_class]
    if unit == "days":
        return start + timedelta(days=amount)
    return add_months(start, amount * 12 if unit == "years" else amount)
