"""Chosen "todays": the days a calendar bug would show on, found afresh on every run.

Each is the next such day after the machine's clock (never a literal date that
today might have passed), at a time of day that tests the edge: a Saturday, an
England and Wales bank holiday (Easter Monday), a bank holiday in Scotland alone,
the last working day of the year, 29 February, both days the clocks change,
just after midnight in summer (London's date ahead of UTC's), and an ordinary
weekday in each season.

Two ways to run on one (see `tests/conftest.py`):
- `CASEWORK_TEST_TODAY=<name or ISO instant> make test`: the whole suite there;
- `@pytest.mark.todays("saturday", ...)`: one test under each named day, every run.

What moves: the test process's clock (time-machine, ticking on from the day) and
every time-skipping Temporal server a test starts (skipped forward to it), so the
service layer, the pages and the workflows all live on the same day. Tests marked
`real_clock` start processes of their own (the dev server, `casework up`), which
cannot travel: they run on the machine's clock, as those processes do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import time_machine

LONDON = ZoneInfo("Europe/London")
ENV_VAR = "CASEWORK_TEST_TODAY"
# Far enough ahead of the machine's clock that a server started a moment later can
# still skip forward to it.
LEAD = timedelta(hours=1)


def _real_now() -> datetime:
    """The machine's clock, whether or not the process is travelling."""
    if time_machine.escape_hatch.is_travelling():
        return datetime.fromtimestamp(time_machine.escape_hatch.time.time(), UTC)
    return datetime.now(UTC)


def _days_from(start: date) -> list[date]:
    return [start + timedelta(days=i) for i in range(5 * 366)]


def _first(after: datetime, at: time, wanted: Callable[[date], bool]) -> datetime:
    """The first instant at local time `at` on a day `wanted` says, after `after` + LEAD."""
    earliest = after + LEAD
    for day in _days_from(earliest.astimezone(LONDON).date()):
        moment = datetime.combine(day, at, LONDON)
        if moment >= earliest and wanted(day):
            return moment.astimezone(UTC)
    raise LookupError("no such day within five years")


def _bank_holidays(region: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("GB", subdiv=region, years=year)


def _easter_monday(day: date) -> bool:
    return _bank_holidays("ENG", day.year).get(day) == "Easter Monday"


def _scottish_only(day: date) -> bool:
    scottish = day in _bank_holidays("SCT", day.year)
    return day.weekday() < 5 and scottish and day not in _bank_holidays("ENG", day.year)


def _working(day: date) -> bool:
    return day.weekday() < 5 and day not in _bank_holidays("ENG", day.year)


def _last_working_day_of_year(day: date) -> bool:
    if not _working(day):
        return False
    rest = (day + timedelta(days=i) for i in range(1, 7))
    return not any(_working(d) for d in rest if d.year == day.year)


def _clocks_change(day: date, month: int) -> bool:
    """The last Sunday of `month`: the clocks go forward (March) or back (October)."""
    return day.month == month and day.weekday() == 6 and (day + timedelta(days=7)).month != month


def _summer(day: date) -> bool:
    return bool(datetime.combine(day, time(12), LONDON).dst())


# name -> (local time of day, which days)
TODAYS: dict[str, tuple[time, Callable[[date], bool]]] = {
    "saturday": (time(10), lambda d: d.weekday() == 5),
    "easter_monday": (time(10), _easter_monday),
    "scottish_bank_holiday": (time(10), _scottish_only),
    # Late in the day: what is due "tomorrow" falls in the next year.
    "last_working_day_of_year": (time(16, 30), _last_working_day_of_year),
    "leap_day": (time(10), lambda d: d.month == 2 and d.day == 29),
    # Before the change (01:00 UTC), so what follows crosses it.
    "clocks_go_forward": (time(0, 30), lambda d: _clocks_change(d, 3)),
    "clocks_go_back": (time(0, 30), lambda d: _clocks_change(d, 10)),
    # 00:30 BST is 23:30 UTC the day before: London's date is a day ahead of UTC's.
    "summer_after_midnight": (time(0, 30), lambda d: _working(d) and _summer(d)),
    "winter_weekday": (time(10), lambda d: _working(d) and not _summer(d)),
    "summer_weekday": (time(10), lambda d: _working(d) and _summer(d)),
}


def chosen(name_or_instant: str, now: datetime | None = None) -> datetime:
    """The instant a name in TODAYS stands for (the next one after `now`), or an ISO
    instant given as such (which must lie ahead: a time-skipping server only goes on)."""
    now = now or _real_now()
    if name_or_instant in TODAYS:
        at, wanted = TODAYS[name_or_instant]
        return _first(now, at, wanted)
    try:
        instant = datetime.fromisoformat(name_or_instant)
    except ValueError:
        names = ", ".join(TODAYS)
        raise ValueError(
            f"{ENV_VAR}: {name_or_instant!r} is neither one of {names} nor ISO"
        ) from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=LONDON)
    if instant < now + LEAD:
        raise ValueError(f"{ENV_VAR}: {name_or_instant} must be at least {LEAD} from now")
    return instant.astimezone(UTC)


def from_environment() -> datetime | None:
    value = os.environ.get(ENV_VAR, "").strip()
    return chosen(value) if value else None


def london_date(days: int = 0) -> str:
    """The date in London `days` from now on the process's clock (a chosen today, when
    travelling), as ISO text: for a date field that must lie in the past or the future."""
    return (datetime.now(LONDON).date() + timedelta(days=days)).isoformat()


class Travel:
    """The process clock moved by a fixed offset from the machine's, ticking on; stopped
    and started again around what must see the machine's clock."""

    def __init__(self, target: datetime) -> None:
        self.offset = target - _real_now()
        self._travel: time_machine.travel | None = None

    def start(self) -> None:
        if self._travel is None:
            self._travel = time_machine.travel(_real_now() + self.offset, tick=True)
            self._travel.start()

    def stop(self) -> None:
        if self._travel is not None:
            self._travel.stop()
            self._travel = None
