"""Working days in London time: fixed examples on chosen dates (every one named), the
rules cases kept from before local time, and properties over ten years of each region.

Every date here is a fixed point of the calendar, never "today": these tests pass on
any day they run.
"""

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import calendar
from domain.calendar import REGIONS, WorkingCalendar

LONDON = ZoneInfo("Europe/London")
ENGLAND = WorkingCalendar()
SCOTLAND = WorkingCalendar.of("GB-SCT")
# The rules of cases that were running before local time shipped.
UTC_RULES = WorkingCalendar(zone=None)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


# --- working days, due at the end of the day, London time ---


@pytest.mark.parametrize(
    ("start", "text", "expected"),
    [
        (london(2026, 3, 10, 9, 30), "1wd", london(2026, 3, 11, 17)),  # Tuesday -> Wednesday
        (london(2026, 3, 13, 15), "1wd", london(2026, 3, 16, 17)),  # Friday -> Monday
        (london(2026, 3, 13, 15), "5wd", london(2026, 3, 20, 17)),  # a working week
        (london(2026, 3, 9, 8), "10wd", london(2026, 3, 23, 17)),  # two weeks
        (london(2026, 3, 10, 18, 30), "1wd", london(2026, 3, 11, 17)),  # after hours: the same
        (london(2026, 3, 11, 12), "0wd", london(2026, 3, 11, 17)),  # the end of today
        (london(2026, 3, 11, 17, 30), "0wd", london(2026, 3, 12, 17)),  # today has ended
    ],
)
def test_working_days_end_at_five_london_time(
    start: datetime, text: str, expected: datetime
) -> None:
    assert ENGLAND.add(start, text) == expected


def test_a_weekend_start_counts_the_next_working_day_as_the_first() -> None:
    monday_five = london(2026, 3, 16, 17)
    assert ENGLAND.add(london(2026, 3, 14, 10), "1wd") == monday_five  # Saturday
    assert ENGLAND.add(london(2026, 3, 15, 23, 59), "1wd") == monday_five  # Sunday night
    assert ENGLAND.add(london(2026, 3, 14, 10), "2wd") == london(2026, 3, 17, 17)
    assert ENGLAND.add(london(2026, 3, 14, 10), "0wd") == monday_five


def test_easter_good_friday_and_easter_monday() -> None:
    # Easter 2026: Good Friday 3 April, Easter Monday 6 April; Tuesday is the first day.
    assert ENGLAND.add(london(2026, 4, 3, 11), "1wd") == london(2026, 4, 7, 17)
    assert ENGLAND.add(london(2026, 4, 2, 16), "1wd") == london(2026, 4, 7, 17)
    # Easter 2027: Good Friday 26 March, Easter Monday 29 March.
    assert ENGLAND.add(london(2027, 3, 25, 9), "2wd") == london(2027, 3, 31, 17)


def test_christmas_and_the_new_year() -> None:
    # 2026: 25 Dec Friday, Boxing Day Saturday observed Monday 28 Dec.
    assert ENGLAND.add(london(2026, 12, 24, 10), "1wd") == london(2026, 12, 29, 17)
    assert not ENGLAND.is_working_day(date(2026, 12, 28))
    # 2027: 25 and 26 Dec are a weekend; both substitutes: Monday 27 and Tuesday 28.
    assert ENGLAND.add(london(2027, 12, 24, 10), "1wd") == london(2027, 12, 29, 17)
    assert ENGLAND.add(london(2027, 12, 24, 10), "3wd") == london(2027, 12, 31, 17)
    # Thursday 31 Dec 2026, the last working day; 1 Jan 2027 is a Friday holiday.
    assert ENGLAND.add(london(2026, 12, 31, 14), "1wd") == london(2027, 1, 4, 17)
    # Scotland: 2 Jan 2027 is a Saturday, its substitute Monday 4 Jan.
    assert SCOTLAND.add(london(2026, 12, 31, 14), "1wd") == london(2027, 1, 5, 17)


def test_scotland_differs_from_england() -> None:
    assert SCOTLAND.add(london(2026, 4, 2, 16), "1wd") == london(2026, 4, 6, 17)  # Easter Mon
    assert ENGLAND.add(london(2025, 12, 31, 9), "1wd") == london(2026, 1, 2, 17)
    assert SCOTLAND.add(london(2025, 12, 31, 9), "1wd") == london(2026, 1, 5, 17)  # 2 January
    # Summer bank holiday: first Monday of August in Scotland, last elsewhere.
    assert not SCOTLAND.is_working_day(date(2026, 8, 3))
    assert ENGLAND.is_working_day(date(2026, 8, 3))
    assert not ENGLAND.is_working_day(date(2026, 8, 31))
    assert SCOTLAND.is_working_day(date(2026, 8, 31))
    # St Andrew's Day.
    assert not SCOTLAND.is_working_day(date(2026, 11, 30))
    assert ENGLAND.is_working_day(date(2026, 11, 30))


def test_northern_ireland_and_wales() -> None:
    ireland = WorkingCalendar.of("GB-NIR")
    assert not ireland.is_working_day(date(2026, 3, 17))  # St Patrick's Day
    assert ENGLAND.is_working_day(date(2026, 3, 17))
    assert not ireland.is_working_day(date(2026, 7, 13))  # Battle of the Boyne, observed
    wales = WorkingCalendar.of("GB-WLS")
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    assert [wales.is_working_day(d) for d in days] == [ENGLAND.is_working_day(d) for d in days]


def test_a_year_of_working_days() -> None:
    # 2026 in England: 261 weekdays less 8 bank holidays on weekdays = 253 working days.
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    assert sum(ENGLAND.is_working_day(d) for d in days) == 253
    assert ENGLAND.add(london(2025, 12, 31, 12), "253wd") == london(2026, 12, 31, 17)


def test_29_february_is_an_ordinary_working_day() -> None:
    assert ENGLAND.is_working_day(date(2028, 2, 29))  # a Tuesday
    assert ENGLAND.add(london(2028, 2, 28, 10), "1wd") == london(2028, 2, 29, 17)
    assert ENGLAND.add(london(2028, 2, 29, 10), "1wd") == london(2028, 3, 1, 17)


def test_days_are_london_days_not_utc_days() -> None:
    # 00:30 BST on Tuesday 7 July 2026 is 23:30 UTC on Monday: it is Tuesday in London.
    just_after_midnight = london(2026, 7, 7, 0, 30)
    assert just_after_midnight.astimezone(UTC).date() == date(2026, 7, 6)
    assert ENGLAND.local_date(just_after_midnight) == date(2026, 7, 7)
    assert ENGLAND.add(just_after_midnight, "1wd") == london(2026, 7, 8, 17)
    # 23:30 UTC on Thursday 24 Dec 2026 is still Christmas Eve in London (GMT) ...
    assert ENGLAND.is_working_day(utc(2026, 12, 24, 23, 30))
    # ... and 23:30 at UTC-2 is already Christmas Day in London.
    minus_two = timezone(timedelta(hours=-2))
    assert not ENGLAND.is_working_day(datetime(2026, 12, 24, 23, 30, tzinfo=minus_two))


def test_the_end_of_the_day_is_five_in_both_seasons() -> None:
    # Clocks go forward on Sunday 29 March 2026: Thursday 26 + 3wd is Tuesday 31, BST.
    due = ENGLAND.add(london(2026, 3, 26, 10), "3wd")
    assert due == utc(2026, 3, 31, 16) and due.astimezone(LONDON).hour == 17
    # Clocks go back on Sunday 25 October 2026: Friday 23 (BST) + 1wd is Monday 26, GMT.
    due = ENGLAND.add(london(2026, 10, 23, 10), "1wd")
    assert due == utc(2026, 10, 26, 17) and due.astimezone(LONDON).hour == 17
    # Started in the repeated hour of the night the clocks go back.
    repeated = datetime(2026, 10, 25, 1, 30, tzinfo=LONDON, fold=1)
    assert ENGLAND.add(repeated, "1wd") == utc(2026, 10, 26, 17)


def test_the_working_day_may_end_at_another_time() -> None:
    half_four = WorkingCalendar.of(working_day_ends="16:30")
    assert half_four.add(london(2026, 7, 6, 9), "1wd") == london(2026, 7, 7, 16, 30)
    belfast = WorkingCalendar.of("GB-NIR", timezone="Europe/Belfast", working_day_ends="18:00")
    assert belfast.add(london(2026, 3, 16, 9), "1wd") == london(2026, 3, 18, 18)  # 17th off


def test_subtract_counts_back_whole_working_days() -> None:
    # Expiring Wednesday 9 Dec 2026 at 17:00: ten working days before is Wednesday 25 Nov.
    assert ENGLAND.subtract(london(2026, 12, 9, 17), "10wd") == london(2026, 11, 25, 17)
    # Across Christmas: expiring Monday 4 Jan 2027; 1 Jan, 28 and 25 Dec are days off.
    assert ENGLAND.subtract(london(2027, 1, 4, 12), "3wd") == london(2026, 12, 29, 17)
    assert ENGLAND.subtract(london(2026, 12, 9, 17), "0wd") == london(2026, 12, 9, 17)
    assert ENGLAND.subtract(utc(2026, 12, 9, 17), "P14D") == utc(2026, 11, 25, 17)
    assert ENGLAND.subtract(utc(2026, 3, 31, 9), "P1M") == utc(2026, 2, 28, 9)


def test_extra_holidays_are_days_off() -> None:
    jubilee = WorkingCalendar.of(extra=["2026-06-08"])
    assert jubilee.add(london(2026, 6, 5, 10), "1wd") == london(2026, 6, 9, 17)
    assert ENGLAND.add(london(2026, 6, 5, 10), "1wd") == london(2026, 6, 8, 17)


def test_holidays_are_computed_once_per_region_and_year(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []
    real = holidays.country_holidays

    def counting(*args: object, **kwargs: object) -> object:
        calls.append((kwargs["subdiv"], kwargs["years"]))
        return real(*args, **kwargs)

    calendar._bank_holidays.cache_clear()
    monkeypatch.setattr(holidays, "country_holidays", counting)
    try:
        for _ in range(50):
            ENGLAND.add(london(2026, 12, 20, 9), "20wd")
    finally:
        calendar._bank_holidays.cache_clear()
    assert sorted(calls) == [("ENG", 2026), ("ENG", 2027)]


# --- the rules of cases running before local time: UTC dates, the start's time ---


@pytest.mark.parametrize(
    ("start", "text", "expected"),
    [
        (utc(2026, 3, 10, 9, 30), "1wd", utc(2026, 3, 11, 9, 30)),
        (utc(2026, 3, 13, 15), "1wd", utc(2026, 3, 16, 15)),
        (utc(2026, 3, 14, 10), "1wd", utc(2026, 3, 17)),  # Saturday: all of Monday given
        (utc(2026, 3, 14, 10), "0wd", utc(2026, 3, 16)),
        (utc(2026, 4, 3, 11), "1wd", utc(2026, 4, 8)),  # Good Friday
        (utc(2026, 7, 6, 23, 30), "1wd", utc(2026, 7, 7, 23, 30)),  # a UTC Monday
    ],
)
def test_the_utc_rules_of_cases_from_before(start: datetime, text: str, expected: datetime) -> None:
    assert UTC_RULES.add(start, text) == expected


def test_the_utc_rules_count_back_at_the_same_time_of_day() -> None:
    assert UTC_RULES.subtract(utc(2026, 12, 9, 12), "10wd") == utc(2026, 11, 25, 12)


# --- ISO-8601 durations: elapsed time, whatever the calendar or the clocks ---


@pytest.mark.parametrize(
    ("start", "text", "expected"),
    [
        (utc(2026, 3, 13, 23, 59, 45), "PT30S", utc(2026, 3, 14, 0, 0, 15)),
        (utc(2026, 12, 24, 9), "P14D", utc(2027, 1, 7, 9)),  # holidays don't matter
        (utc(2026, 3, 13, 9), "P1D", utc(2026, 3, 14, 9)),  # Friday -> Saturday
        (utc(2026, 3, 15, 8), "P1Y", utc(2027, 3, 15, 8)),
        (utc(2028, 2, 29, 8), "P1Y", utc(2029, 2, 28, 8)),  # leap day clamped
        (utc(2026, 1, 31, 8), "P1M", utc(2026, 2, 28, 8)),  # month end clamped
        (utc(2028, 1, 31, 8), "P1M", utc(2028, 2, 29, 8)),
        (utc(2026, 1, 31, 8), "P1M1D", utc(2026, 3, 1, 8)),  # months first, then days
        (utc(2026, 3, 29, 0, 30), "PT2H", utc(2026, 3, 29, 2, 30)),  # two hours, clocks or not
    ],
)
def test_iso_durations_are_elapsed_time(start: datetime, text: str, expected: datetime) -> None:
    assert ENGLAND.add(start, text) == expected
    assert ENGLAND.add(start, text).tzinfo is UTC


def test_offsets_in_order() -> None:
    start = london(2026, 3, 13, 15)
    assert ENGLAND.offsets(start, ["2wd", "PT30S", "1wd"]) == [
        london(2026, 3, 17, 17),
        utc(2026, 3, 13, 15, 0, 30),
        london(2026, 3, 16, 17),
    ]
    assert ENGLAND.offsets(start, []) == []


# --- refusals ---


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ENGLAND.add(datetime(2026, 3, 10, 9), "1wd")


def test_unknown_region_zone_or_time_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'GB-XYZ' is not a supported bank-holiday region"):
        WorkingCalendar.of("GB-XYZ")
    with pytest.raises(ValueError, match="GB-ENG, GB-NIR, GB-SCT, GB-WLS"):
        WorkingCalendar.of("ENG")
    for bad in ("Mars/Olympus", "../etc/passwd", ""):
        with pytest.raises(ValueError, match="time zone"):
            WorkingCalendar.of(timezone=bad or "nowhere")
    for bad in ("5pm", "24:00", "17:60", "7:00", "17:00:00"):
        with pytest.raises(ValueError, match="HH:MM"):
            WorkingCalendar.of(working_day_ends=bad)


@pytest.mark.parametrize("text", ["five days", "5 wd", "-1wd", "P", "PT", "5d", ""])
def test_malformed_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        ENGLAND.add(utc(2026, 3, 10), text)


# --- properties over ten years of each region's calendar ---

TEN_YEARS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)
CALENDARS = st.sampled_from([WorkingCalendar.of(region) for region in sorted(REGIONS)])
WORKING_DAYS = st.integers(min_value=1, max_value=60)


def _working_days_between(cal: WorkingCalendar, first: date, last: date) -> int:
    """Working days in [first, last], counted a day at a time."""
    days = (last - first).days + 1
    return sum(cal.is_working_day(first + timedelta(days=i)) for i in range(max(days, 0)))


@settings(max_examples=300, deadline=None)
@given(cal=CALENDARS, start=TEN_YEARS, n=WORKING_DAYS)
def test_a_due_time_is_the_end_of_the_nth_working_day(
    cal: WorkingCalendar, start: datetime, n: int
) -> None:
    due = cal.add(start, f"{n}wd")
    local = due.astimezone(LONDON)
    # Always a working day's end, in local terms whatever the season ...
    assert local.time() == time(17) and cal.is_working_day(local.date())
    # ... never earlier than the start ...
    assert due > start
    # ... and the n-th working day counted from the day after the start's date (from the
    # next working day, as the first, when the start's date is not one).
    first = cal.local_date(start)
    if cal.is_working_day(first):
        first += timedelta(days=1)
    assert _working_days_between(cal, first, local.date()) == n


@settings(max_examples=300, deadline=None)
@given(
    cal=CALENDARS,
    start=TEN_YEARS,
    n=WORKING_DAYS,
    later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)),
)
def test_due_times_are_monotonic_in_n_and_in_the_start(
    cal: WorkingCalendar, start: datetime, n: int, later: timedelta
) -> None:
    assert cal.add(start, f"{n}wd") < cal.add(start, f"{n + 1}wd")
    assert cal.add(start, f"{n}wd") <= cal.add(start + later, f"{n}wd")


@settings(max_examples=300, deadline=None)
@given(cal=CALENDARS, end=TEN_YEARS, n=WORKING_DAYS)
def test_counting_back_then_forward_comes_home(cal: WorkingCalendar, end: datetime, n: int) -> None:
    notice = cal.subtract(end, f"{n}wd")
    assert notice < end and notice.astimezone(LONDON).time() == time(17)
    assert cal.is_working_day(cal.local_date(notice))
    # From the notice, n working days forward is the end of the expiry's working day (or
    # of the next one, when the expiry falls on a day off).
    landing = cal.local_date(end)
    if not cal.is_working_day(landing):
        landing = cal.next_working_day(landing)
    assert cal.add(notice, f"{n}wd") == cal.end_of(landing)


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_every_day_of_ten_years_gets_a_working_days_end(region: str) -> None:
    cal = WorkingCalendar.of(region)
    day, last = date(2026, 1, 1), date(2036, 1, 1)
    while day < last:
        for hour in (0, 12, 23):  # both sides of midnight in London, GMT and BST
            start = datetime.combine(day, time(hour, 30), UTC)
            due = cal.add(start, "1wd").astimezone(LONDON)
            assert due.time() == time(17) and cal.is_working_day(due.date()), start
            assert due.date() > cal.local_date(start)
        day += timedelta(days=1)
