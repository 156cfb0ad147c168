"""Working days on a UK bank-holiday calendar, and policy durations added to instants.

A working day is Monday to Friday, less the bank holidays of the policy's
region. Days are judged by their UTC date: instants come in and go out as
aware UTC datetimes, and an hour's difference from London time around
midnight is not worth a time-zone dependency in every SLA.

Called on every case transition (through a local activity), so each region's
holidays for a year are computed once and kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

import holidays

from workflows.durations import add_elapsed, parse_duration

# Policy region code -> the `holidays` package's subdivision of "GB". England
# and Wales share their bank holidays, so "GB-ENG" (the default) stands for both.
REGIONS: dict[str, str] = {"GB-ENG": "ENG", "GB-WLS": "WLS", "GB-SCT": "SCT", "GB-NIR": "NIR"}

_ONE_DAY = timedelta(days=1)


def check_region(region: str) -> None:
    """ValueError unless `region` is one of REGIONS (the policy file's check uses it too)."""
    if not isinstance(region, str) or region not in REGIONS:
        raise ValueError(
            f"{region!r} is not a supported bank-holiday region ({', '.join(sorted(REGIONS))})"
        )


@cache
def _bank_holidays(region: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("GB", subdiv=REGIONS[region], years=year))


def is_working_day(d: date, region: str, extra: frozenset[date] = frozenset()) -> bool:
    """Whether `d` is Monday-Friday and not a bank holiday in `region` (e.g. "GB-ENG"),
    nor one of the `extra` holidays the policy file adds."""
    check_region(region)
    if isinstance(d, datetime):  # a datetime never equals a date: compare its UTC date
        d = d.astimezone(UTC).date() if d.tzinfo else d.date()
    return d.weekday() < 5 and d not in _bank_holidays(region, d.year) and d not in extra


def _next_working_day(d: date, region: str, extra: frozenset[date]) -> date:
    d += _ONE_DAY
    while not is_working_day(d, region, extra):
        d += _ONE_DAY
    return d


def extra_days(extra: Iterable[str]) -> frozenset[date]:
    """The policy file's `extra_holidays` (ISO dates) as dates; ValueError names a bad one."""
    days: set[date] = set()
    for text in extra:
        try:
            days.add(date.fromisoformat(text))
        except (TypeError, ValueError):
            raise ValueError(f"{text!r} is not an ISO date (YYYY-MM-DD)") from None
    return frozenset(days)


def add_duration(start: datetime, text: str, region: str, extra: Iterable[str] = ()) -> datetime:
    """`start` plus a policy duration, as an aware UTC datetime.

    ISO-8601 durations ("PT30S", "P14D", "P1Y") are plain elapsed time and
    calendar months (clamped to the month's end); weekends and holidays do not
    matter to them.

    "<n>wd" is the same time of day on the n-th working day after `start`:
    Friday 15:00 + 1wd is Monday 15:00 (Tuesday if Monday is a bank holiday).
    A start on a weekend or bank holiday counts from 00:00 UTC of the next
    working day, so Saturday + 1wd is Tuesday 00:00: the whole of Monday is
    the one working day given. "0wd" is `start` (moved to that next working day).

    `extra` (ISO dates) are holidays besides the region's, e.g. a one-off bank holiday.

    ValueError for a naive `start`, an unknown region or a malformed duration.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be a timezone-aware datetime")
    check_region(region)
    start = start.astimezone(UTC)
    duration = parse_duration(text)
    if duration.working_days is None:
        return add_elapsed(start, duration)
    days_off = extra_days(extra)
    day = start.date()
    if not is_working_day(day, region, days_off):
        day = _next_working_day(day, region, days_off)
        start = datetime.combine(day, time(0), UTC)
    for _ in range(duration.working_days):
        day = _next_working_day(day, region, days_off)
    return datetime.combine(day, start.timetz())


def offsets(
    start: datetime, durations: list[str], region: str, extra: Iterable[str] = ()
) -> list[datetime]:
    """`add_duration(start, d, region, extra)` for each duration, in order."""
    return [add_duration(start, text, region, extra) for text in durations]
