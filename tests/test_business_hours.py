"""Opening hours: weekly hours in Europe/Berlin, public holidays of NW, closed days, DST."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from sessions_app.business_hours import (
    OutsideOpeningHours,
    is_open,
    next_opening,
    require_open,
    require_slot_inside_hours,
)
from sessions_app.models import ClosedDay

BERLIN = ZoneInfo("Europe/Berlin")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (local(2026, 11, 25, 7, 59), False),  # Wednesday, a minute before opening
        (local(2026, 11, 25, 8, 0), True),
        (local(2026, 11, 25, 17, 59), True),  # a minute before closing
        (local(2026, 11, 25, 18, 0), False),  # closing time
        (local(2026, 11, 25, 18, 1), False),  # a minute after
        (local(2026, 11, 28, 10, 0), False),  # Saturday
    ],
)
def test_it_follows_the_weekly_hours(db, moment, open_):
    assert is_open(moment) is open_


def test_opening_follows_the_wall_clock_across_the_spring_dst_switch(db):
    # Sunday 29 March 2026 the clocks go forward: 08:00 is 07:00 UTC before, 06:00 UTC after.
    assert next_opening(local(2026, 3, 27, 18, 30)) == utc(2026, 3, 30, 6, 0)
    assert is_open(utc(2026, 3, 27, 7, 0)) and not is_open(utc(2026, 3, 27, 6, 30))
    assert is_open(utc(2026, 3, 30, 6, 0)) and not is_open(utc(2026, 3, 30, 5, 59))


def test_opening_follows_the_wall_clock_across_the_autumn_dst_switch(db):
    # Sunday 25 October 2026 the clocks go back: Monday opens at 07:00 UTC.
    assert next_opening(local(2026, 10, 23, 18, 0)) == utc(2026, 10, 26, 7, 0)
    assert is_open(utc(2026, 10, 26, 16, 59)) and not is_open(utc(2026, 10, 26, 17, 0))


def test_a_public_holiday_of_the_state_is_closed(db, settings):
    corpus_christi = local(2026, 6, 4, 10, 0)  # a holiday in NW, not in Berlin
    assert not is_open(corpus_christi)
    assert next_opening(local(2026, 6, 3, 18, 0)) == local(2026, 6, 5, 8, 0)
    settings.HOLIDAY_STATE = "BE"
    assert is_open(corpus_christi)


def test_closed_days_entered_by_administrators_are_closed(db):
    assert is_open(local(2026, 12, 24, 10, 0))
    ClosedDay.objects.create(date=date(2026, 12, 24), reason="Heiligabend")
    assert not is_open(local(2026, 12, 24, 10, 0))
    # 25 and 26 December are public holidays, then a weekend.
    assert next_opening(local(2026, 12, 23, 18, 0)) == local(2026, 12, 28, 8, 0)


def test_a_refusal_names_the_next_opening(db):
    with pytest.raises(OutsideOpeningHours) as refused:
        require_open(local(2026, 11, 27, 18, 0))  # Friday evening
    assert refused.value.next_opening == local(2026, 11, 30, 8, 0)


@pytest.mark.parametrize(
    ("start", "end", "allowed"),
    [
        (local(2026, 11, 25, 17, 30), local(2026, 11, 25, 18, 0), True),
        (local(2026, 11, 25, 17, 30), local(2026, 11, 25, 18, 1), False),
        (local(2026, 11, 25, 7, 59), local(2026, 11, 25, 8, 30), False),
        (local(2026, 6, 4, 10, 0), local(2026, 6, 4, 10, 30), False),  # holiday
        (local(2026, 11, 25, 17, 30), local(2026, 11, 26, 8, 30), False),  # over night
    ],
)
def test_a_slot_must_lie_within_one_opening_period(db, start, end, allowed):
    if allowed:
        require_slot_inside_hours(start, end)
    else:
        with pytest.raises(OutsideOpeningHours):
            require_slot_inside_hours(start, end)
