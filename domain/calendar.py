"""Working days on a UK bank-holiday calendar, in the staff's time zone.

A working day is Monday to Friday, less the bank holidays of the policy's
region and the policy file's `extra_holidays`, judged by its date in the
policy's time zone (`[calendar] timezone`, Europe/London by default). A stage
of `N` working days is due at the end of the N-th working day after the day
it starts (`working_day_ends`, 17:00 local by default); a stage that starts on
a weekend or holiday counts that next working day as its first. ISO-8601
durations are plain elapsed time. Instants come in and go out as aware UTC
datetimes; only the arithmetic happens in local time.

A `WorkingCalendar` with no zone keeps the rules cases followed before local
time (days judged by their UTC date, due at the start's time of day): workflows
that were already running when local time shipped ask for it, so that what they
recorded replays (`workflows.engine.LOCAL_TIME`).

Called on every case transition (through a local activity), so each region's
holidays for a year are computed once and kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from workflows.durations import add_elapsed, add_months, parse_duration

# Policy region code -> the `holidays` package's subdivision of "GB". England
# and Wales share their bank holidays, so "GB-ENG" (the default) stands for both.
REGIONS: dict[str, str] = {"GB-ENG": "ENG", "GB-WLS": "WLS", "GB-SCT": "SCT", "GB-NIR": "NIR"}
DEFAULT_REGION = "GB-ENG"
DEFAULT_TIMEZONE = "Europe/London"
DEFAULT_DAY_ENDS = "17:00"

_ONE_DAY = timedelta(days=1)
_LONDON = ZoneInfo(DEFAULT_TIMEZONE)
_HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def check_region(region: str) -> None:
    """ValueError unless `region` is one of REGIONS (the policy file's check uses it too)."""
    if not isinstance(region, str) or region not in REGIONS:
        raise ValueError(
            f"{region!r} is not a supported bank-holiday region ({', '.join(sorted(REGIONS))})"
        )


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (e.g. "Europe/London"); ValueError naming it if unknown."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{name!r} is not a time zone name, e.g. {DEFAULT_TIMEZONE!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known time zone, e.g. {DEFAULT_TIMEZONE!r}") from None


def time_of_day(text: str) -> time:
    """ "17:00" as a time; ValueError unless it is HH:MM on a 24-hour clock."""
    found = _HH_MM.match(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f'{text!r} is not a time of day as HH:MM, e.g. "{DEFAULT_DAY_ENDS}"')
    return time(int(found[1]), int(found[2]))


def extra_days(extra: Iterable[str]) -> frozenset[date]:
    """The policy file's `extra_holidays` (ISO dates) as dates; ValueError names a bad one."""
    days: set[date] = set()
    for text in extra:
        try:
            days.add(date.fromisoformat(text))
        except (TypeError, ValueError):
            raise ValueError(f"{text!r} is not an ISO date (YYYY-MM-DD)") from None
    return frozenset(days)


@cache
def _bank_holidays(region: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("GB", subdiv=REGIONS[region], years=year))


@dataclass(frozen=True)
class WorkingCalendar:
    """Which days are working days, and policy durations added to instants."""

    region: str = DEFAULT_REGION
    extra: frozenset[date] = frozenset()
    # None: days judged by their UTC date, due at the start's time of day (the rules of
    # cases that were running before local time).
    zone: ZoneInfo | None = _LONDON
    day_ends: time = time(17)

    def __post_init__(self) -> None:
        check_region(self.region)

    @classmethod
    def of(
        cls,
        region: str = DEFAULT_REGION,
        extra: Iterable[str] = (),
        timezone: str | None = DEFAULT_TIMEZONE,
        working_day_ends: str = DEFAULT_DAY_ENDS,
    ) -> WorkingCalendar:
        """From the policy file's words; `timezone` None or "" for the UTC rules."""
        return cls(
            region,
            extra_days(extra),
            zone(timezone) if timezone else None,
            time_of_day(working_day_ends),
        )

    # ---- days ------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """Whether `day` is Monday-Friday and neither a bank holiday nor an extra one."""
        if isinstance(day, datetime):  # a datetime never equals a date: take its local date
            day = self.local_date(day)
        return (
            day.weekday() < 5
            and day not in _bank_holidays(self.region, day.year)
            and day not in self.extra
        )

    def next_working_day(self, day: date) -> date:
        day += _ONE_DAY
        while not self.is_working_day(day):
            day += _ONE_DAY
        return day

    def previous_working_day(self, day: date) -> date:
        day -= _ONE_DAY
        while not self.is_working_day(day):
            day -= _ONE_DAY
        return day

    def local_date(self, instant: datetime) -> date:
        """The date `instant` falls on where the staff are (UTC without a zone)."""
        _aware(instant)
        return instant.astimezone(self.zone or UTC).date()

    def end_of(self, day: date) -> datetime:
        """When working day `day` ends (`day_ends`, local), as a UTC instant."""
        return datetime.combine(day, self.day_ends, self.zone or UTC).astimezone(UTC)

    def end_of_date(self, day: date) -> datetime:
        """Midnight at the end of `day`, local, as a UTC instant (a hearing's date)."""
        return datetime.combine(day + _ONE_DAY, time.min, self.zone or UTC).astimezone(UTC)

    # ---- durations -------------------------------------------------------------------

    def add(self, start: datetime, text: str) -> datetime:
        """`start` plus a policy duration, as an aware UTC datetime.

        ISO-8601 durations ("PT30S", "P14D", "P1Y") are elapsed time and calendar
        months (clamped to the month's end); weekends, holidays and clock changes do
        not matter to them.

        "<n>wd" is the end of the n-th working day after the day `start` falls on:
        Monday 10:00 + 1wd is Tuesday 17:00, Friday 10:00 + 1wd is Monday 17:00
        (Tuesday if Monday is a bank holiday). A start on a weekend or holiday counts
        from the next working day, which is the first: Saturday + 1wd is Monday 17:00.
        "0wd" is the end of the day `start` falls on, or of the next working day if that
        day has ended or is not one, and never before `start`.

        ValueError for a naive `start` or a malformed duration.
        """
        _aware(start)
        duration = parse_duration(text)
        if duration.working_days is None:
            return add_elapsed(start.astimezone(UTC), duration)
        if self.zone is None:
            return self._add_utc_days(start.astimezone(UTC), duration.working_days)
        day = self.local_date(start)
        n = duration.working_days
        if not self.is_working_day(day):
            day = self.next_working_day(day)
            n = max(n - 1, 0)
        elif n == 0 and self.end_of(day) < start:
            day = self.next_working_day(day)
        for _ in range(n):
            day = self.next_working_day(day)
        return self.end_of(day)

    def subtract(self, end: datetime, text: str) -> datetime:
        """`end` less a policy duration (a notice before an expiry), as aware UTC.

        ISO durations go back in elapsed time and calendar months. "<n>wd" is the end
        of the n-th working day before the day `end` falls on (so a notice "10wd"
        before an expiry leaves ten whole working days); "0wd" is `end` itself.
        """
        _aware(end)
        duration = parse_duration(text)
        end = end.astimezone(UTC)
        if duration.working_days is None:
            return add_months(end, -duration.months) - duration.elapsed
        if not duration.working_days:
            return end
        day = self.local_date(end)
        for _ in range(duration.working_days):
            day = self.previous_working_day(day)
        return self.end_of(day) if self.zone is not None else datetime.combine(day, end.timetz())

    def offsets(self, start: datetime, durations: list[str]) -> list[datetime]:
        """`self.add(start, d)` for each duration, in order."""
        return [self.add(start, text) for text in durations]

    def _add_utc_days(self, start: datetime, n: int) -> datetime:
        """The rules before local time: the same time of day on the n-th working day
        after `start` by UTC dates; a start on a day off counts from 00:00 UTC of the
        next working day, and "0wd" is `start` (moved to that next working day)."""
        day = start.date()
        if not self.is_working_day(day):
            day = self.next_working_day(day)
            start = datetime.combine(day, time(0), UTC)
        for _ in range(n):
            day = self.next_working_day(day)
        return datetime.combine(day, start.timetz())


def _aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instants must be timezone-aware datetimes")
