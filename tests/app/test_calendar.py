from datetime import UTC, date, datetime, timedelta, timezone

import holidays
import pytest

from app import calendar
from app.calendar import add_duration, is_working_day, offsets


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- working days ---


@pytest.mark.parametrize(
    ("start", "text", "expected"),
    [
        (utc(2026, 3, 10, 9, 30), "1wd", utc(2026, 3, 11, 9, 30)),  # Tuesday -> Wednesday
        (utc(2026, 3, 13, 15, 0), "1wd", utc(2026, 3, 16, 15, 0)),  # Friday -> Monday
        (utc(2026, 3, 13, 15, 0), "5wd", utc(2026, 3, 20, 15, 0)),  # a working week
        (utc(2026, 3, 9, 8, 0), "10wd", utc(2026, 3, 23, 8, 0)),  # two weeks
        (utc(2026, 3, 11, 12, 0), "0wd", utc(2026, 3, 11, 12, 0)),
    ],
)
def test_working_days_skip_weekends(start: datetime, text: str, expected: datetime) -> None:
    assert add_duration(start, text, "GB-ENG") == expected


def test_weekend_start_counts_from_the_next_working_day() -> None:
    monday_midnight_plus_one = utc(2026, 3, 17)  # Tuesday 00:00: all of Monday given
    assert add_duration(utc(2026, 3, 14, 10, 0), "1wd", "GB-ENG") == monday_midnight_plus_one
    assert add_duration(utc(2026, 3, 15, 23, 59), "1wd", "GB-ENG") == monday_midnight_plus_one
    assert add_duration(utc(2026, 3, 14, 10, 0), "0wd", "GB-ENG") == utc(2026, 3, 16)


def test_holiday_start_counts_from_the_next_working_day() -> None:
    # Good Friday 2026 (3 April) and Easter Monday (6 April) in England.
    assert add_duration(utc(2026, 4, 3, 11, 0), "1wd", "GB-ENG") == utc(2026, 4, 8)


def test_christmas_2026_boxing_day_substitute() -> None:
    # 25 Dec Friday, 26 Dec Saturday -> Boxing Day observed Monday 28 Dec.
    assert add_duration(utc(2026, 12, 24, 10, 0), "1wd", "GB-ENG") == utc(2026, 12, 29, 10, 0)
    assert not is_working_day(date(2026, 12, 28), "GB-ENG")


def test_christmas_2027_falls_on_saturday() -> None:
    # 25 and 26 Dec are a weekend; both substitutes: Monday 27 and Tuesday 28.
    assert not is_working_day(date(2027, 12, 27), "GB-ENG")
    assert not is_working_day(date(2027, 12, 28), "GB-ENG")
    assert is_working_day(date(2027, 12, 29), "GB-ENG")
    assert add_duration(utc(2027, 12, 24, 10, 0), "1wd", "GB-ENG") == utc(2027, 12, 29, 10, 0)
    assert add_duration(utc(2027, 12, 24, 10, 0), "3wd", "GB-ENG") == utc(2027, 12, 31, 10, 0)


def test_easter_good_friday_and_easter_monday() -> None:
    # Easter 2026: Good Friday 3 April, Easter Monday 6 April.
    assert add_duration(utc(2026, 4, 2, 16, 0), "1wd", "GB-ENG") == utc(2026, 4, 7, 16, 0)
    # Easter 2027: Good Friday 26 March, Easter Monday 29 March.
    assert add_duration(utc(2027, 3, 25, 9, 0), "2wd", "GB-ENG") == utc(2027, 3, 31, 9, 0)


def test_scotland_differs_from_england() -> None:
    # Easter Monday is not a Scottish bank holiday.
    assert add_duration(utc(2026, 4, 2, 16, 0), "1wd", "GB-SCT") == utc(2026, 4, 6, 16, 0)
    # 2 January is, in Scotland only.
    assert add_duration(utc(2025, 12, 31, 9, 0), "1wd", "GB-ENG") == utc(2026, 1, 2, 9, 0)
    assert add_duration(utc(2025, 12, 31, 9, 0), "1wd", "GB-SCT") == utc(2026, 1, 5, 9, 0)
    # Summer bank holiday: first Monday of August in Scotland, last elsewhere.
    assert not is_working_day(date(2026, 8, 3), "GB-SCT")
    assert is_working_day(date(2026, 8, 3), "GB-ENG")
    assert not is_working_day(date(2026, 8, 31), "GB-ENG")
    assert is_working_day(date(2026, 8, 31), "GB-SCT")
    # St Andrew's Day.
    assert not is_working_day(date(2026, 11, 30), "GB-SCT")
    assert is_working_day(date(2026, 11, 30), "GB-ENG")


def test_northern_ireland_and_wales() -> None:
    assert not is_working_day(date(2026, 3, 17), "GB-NIR")  # St Patrick's Day
    assert is_working_day(date(2026, 3, 17), "GB-ENG")
    assert not is_working_day(date(2026, 7, 13), "GB-NIR")  # Battle of the Boyne, observed
    # England and Wales share their bank holidays.
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    assert [is_working_day(d, "GB-WLS") for d in days] == [
        is_working_day(d, "GB-ENG") for d in days
    ]


def test_working_days_cross_the_new_year() -> None:
    # Thursday 31 Dec 2026; 1 Jan 2027 Friday is a holiday -> Monday 4 Jan.
    assert add_duration(utc(2026, 12, 31, 14, 0), "1wd", "GB-ENG") == utc(2027, 1, 4, 14, 0)
    # Scotland: 2 Jan is a Saturday, its substitute is Monday 4 Jan -> Tuesday 5 Jan.
    assert add_duration(utc(2026, 12, 31, 14, 0), "1wd", "GB-SCT") == utc(2027, 1, 5, 14, 0)


def test_a_year_of_working_days() -> None:
    # 2026 in England: 261 weekdays less 8 bank holidays on weekdays = 253 working days.
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    assert sum(is_working_day(d, "GB-ENG") for d in days) == 253
    assert add_duration(utc(2025, 12, 31, 12, 0), "253wd", "GB-ENG") == utc(2026, 12, 31, 12, 0)


def test_is_working_day_takes_a_datetime_by_its_utc_date() -> None:
    assert not is_working_day(utc(2026, 12, 25, 12, 0), "GB-ENG")
    # 23:30 on Thursday 24 Dec at UTC-2 is 01:30 on Christmas Day UTC.
    minus_two = timezone(timedelta(hours=-2))
    assert not is_working_day(datetime(2026, 12, 24, 23, 30, tzinfo=minus_two), "GB-ENG")


def test_non_utc_start_comes_back_in_utc() -> None:
    start = datetime(2026, 3, 10, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    result = add_duration(start, "1wd", "GB-ENG")
    assert result == utc(2026, 3, 11, 9, 0)
    assert result.utcoffset() == timedelta(0)
    assert add_duration(start, "PT1H", "GB-ENG").tzinfo is UTC


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
            add_duration(utc(2026, 12, 20, 9, 0), "20wd", "GB-ENG")
    finally:
        calendar._bank_holidays.cache_clear()
    assert sorted(calls) == [("ENG", 2026), ("ENG", 2027)]


# --- ISO-8601 durations ---


@pytest.mark.parametrize(
    ("start", "text", "expected"),
    [
        (utc(2026, 3, 13, 23, 59, 45), "PT30S", utc(2026, 3, 14, 0, 0, 15)),
        (utc(2026, 12, 24, 9, 0), "P14D", utc(2027, 1, 7, 9, 0)),  # holidays don't matter
        (utc(2026, 3, 13, 9, 0), "P1D", utc(2026, 3, 14, 9, 0)),  # Friday -> Saturday
        (utc(2026, 3, 15, 8, 0), "P1Y", utc(2027, 3, 15, 8, 0)),
        (utc(2028, 2, 29, 8, 0), "P1Y", utc(2029, 2, 28, 8, 0)),  # leap day clamped
        (utc(2026, 1, 31, 8, 0), "P1M", utc(2026, 2, 28, 8, 0)),  # month end clamped
        (utc(2028, 1, 31, 8, 0), "P1M", utc(2028, 2, 29, 8, 0)),
        (utc(2026, 1, 31, 8, 0), "P1M1D", utc(2026, 3, 1, 8, 0)),  # months first, then days
        (utc(2026, 3, 29, 0, 30), "PT2H", utc(2026, 3, 29, 2, 30)),  # no DST jump in UTC
    ],
)
def test_iso_durations_are_elapsed_time(start: datetime, text: str, expected: datetime) -> None:
    assert add_duration(start, text, "GB-ENG") == expected


def test_offsets_in_order() -> None:
    start = utc(2026, 3, 13, 15, 0)
    assert offsets(start, ["2wd", "PT30S", "1wd"], "GB-ENG") == [
        utc(2026, 3, 17, 15, 0),
        utc(2026, 3, 13, 15, 0, 30),
        utc(2026, 3, 16, 15, 0),
    ]
    assert offsets(start, [], "GB-ENG") == []


# --- refusals ---


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_duration(datetime(2026, 3, 10, 9, 0), "1wd", "GB-ENG")


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'GB-XYZ' is not a supported bank-holiday region"):
        add_duration(utc(2026, 3, 10), "1wd", "GB-XYZ")
    with pytest.raises(ValueError, match="GB-ENG, GB-NIR, GB-SCT, GB-WLS"):
        is_working_day(date(2026, 3, 10), "ENG")


@pytest.mark.parametrize("text", ["five days", "5 wd", "-1wd", "P", "PT", "5d", ""])
def test_malformed_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        add_duration(utc(2026, 3, 10), text, "GB-ENG")
