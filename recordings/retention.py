"""How long recordings are kept: what the customer's accepted terms say, else the settings.

A recording of the default class is kept as long as the terms version its customer accepted
promises (``TermsVersion.recording_retention``, set when the version was published); other
classes, and a session without consent, follow PORTAL_RECORDING_RETENTION.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from django.conf import settings

from portal.environment import parse_period_code


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` later; the month's last day where that day is missing."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def period_for(recording_class: str, session=None) -> tuple[int, str]:
    """The retention of a recording of this class in ``session``, e.g. ``(24, "months")``."""
    if session is not None and recording_class == settings.RECORDING_DEFAULT_CLASS:
        # The session's consent through its reverse relation: recordings never import consent.
        consent = getattr(session, "consent", None)
        promised = consent.terms.recording_retention if consent is not None else ""
        if promised:
            return parse_period_code(promised)
    return settings.RECORDING_RETENTION[recording_class]


def retention_until(start: datetime, recording_class: str, session=None) -> datetime:
    """When a recording of this class, started at ``start`` in ``session``, may be purged."""
    amount, unit = period_for(recording_class, session)
    if unit == "days":
        return start + timedelta(days=amount)
    return add_months(start, amount * 12 if unit == "years" else amount)
