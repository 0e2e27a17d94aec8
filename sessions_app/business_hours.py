"""Opening hours: weekly hours in the local time zone, minus public holidays and closed days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings
from django.utils import formats, timezone
from django.utils.translation import gettext as _

# How far ahead to look for the next opening (a year covers any run of closed days).
SEARCH_DAYS = 400


class OutsideOpeningHours(Exception):
    """Refused because the service is closed; ``next_opening`` says when it opens again."""

    def __init__(self, next_opening: datetime | None, *, closes: datetime | None = None):
        self.next_opening = next_opening
        self.closes = closes  # set when a slot starts in opening hours but runs past closing
        super().__init__(f"outside opening hours; next opening {next_opening}")

    def message(self) -> str:
        """"Outside opening hours", naming the next opening time in the reader's language."""
        if self.next_opening is None:
            return _("Outside opening hours; no opening is planned in the coming year.")
        zone = local_zone()
        when = formats.date_format(timezone.localtime(self.next_opening, zone), "l, j. F Y, H:i")
        if self.closes is not None:
            return _(
                "The slot runs past closing time: it must end by %(closes)s. "
                "The service opens next on %(when)s."
            ) % {"closes": timezone.localtime(self.closes, zone).strftime("%H:%M"), "when": when}
        return _("Outside opening hours. The service opens next on %(when)s.") % {"when": when}


@dataclass(frozen=True)
class Period:
    opens: datetime
    closes: datetime

    def contains(self, moment: datetime) -> bool:
        return self.opens <= moment < self.closes


def local_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


@lru_cache(maxsize=32)
def _public_holidays(state: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("DE", subdiv=state, years=year, language="de")


def closed_reason(day: date) -> str | None:
    """Why the service is closed all day, or None if it keeps its weekly hours."""
    from sessions_app.models import ClosedDay

    if day.weekday() not in settings.OPENING_HOURS:
        return "weekend"
    if settings.HOLIDAY_STATE != "none":
        holiday = _public_holidays(settings.HOLIDAY_STATE, day.year).get(day)
        if holiday:
            return str(holiday)
    closed = ClosedDay.objects.filter(date=day).values_list("reason", flat=True).first()
    return closed


def period_on(day: date) -> Period | None:
    """The opening period of a local calendar day, as aware datetimes, or None."""
    if closed_reason(day) is not None:
        return None
    start, end = settings.OPENING_HOURS[day.weekday()]
    zone = local_zone()
    # Built from the local wall clock, so a DST switch is handled by the zone, not by us.
    return Period(datetime.combine(day, start, zone), datetime.combine(day, end, zone))


def weekly_hours() -> list[tuple[str, str, time, time]]:
    """The weekly hours for display, runs of days with equal hours joined: (first, last,
    opens, closes) with localized day names; ``last`` is empty for a single day."""
    from django.utils.dates import WEEKDAYS

    runs: list[list] = []
    for day in sorted(settings.OPENING_HOURS):
        hours = settings.OPENING_HOURS[day]
        if runs and runs[-1][1] == day - 1 and runs[-1][2] == hours:
            runs[-1][1] = day
        else:
            runs.append([day, day, hours])
    return [
        (str(WEEKDAYS[first]), str(WEEKDAYS[last]) if last != first else "", *hours)
        for first, last, hours in runs
    ]


def is_open(moment: datetime | None = None) -> bool:
    moment = moment or timezone.now()
    period = period_on(moment.astimezone(local_zone()).date())
    return period is not None and period.contains(moment)


def next_opening(after: datetime | None = None) -> datetime | None:
    """The next time the service opens strictly after ``after`` (or opens now, if open)."""
    after = after or timezone.now()
    day = after.astimezone(local_zone()).date()
    for offset in range(SEARCH_DAYS):
        period = period_on(day + timedelta(days=offset))
        if period is None:
            continue
        if period.contains(after):
            return after
        if period.opens > after:
            return period.opens
    return None


def require_open(moment: datetime | None = None) -> None:
    """Raise OutsideOpeningHours unless the service is open at ``moment``."""
    moment = moment or timezone.now()
    if not is_open(moment):
        raise OutsideOpeningHours(next_opening(moment))


def require_slot_inside_hours(start: datetime, end: datetime) -> None:
    """A slot must lie within one day's opening period."""
    period = period_on(start.astimezone(local_zone()).date())
    if period is not None and period.contains(start) and end > period.closes:
        raise OutsideOpeningHours(next_opening(period.closes), closes=period.closes)
    if period is None or not (period.opens <= start and end <= period.closes):
        raise OutsideOpeningHours(next_opening(start))
