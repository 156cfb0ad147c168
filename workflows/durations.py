"""Policy durations: `"<n>wd"` working days, or ISO-8601 (`"PT30S"`, `"P14D"`, `"P1Y"`).

Standard library only, so workflows can add ISO durations themselves. Working
days need the bank-holiday calendar, which lives outside the sandbox
(`domain.calendar`); a workflow asks for those through a local activity.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_ISO = re.compile(
    r"^P(?!$)(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)
_WD = re.compile(r"^(?P<n>\d+)wd$")


@dataclass(frozen=True)
class Duration:
    """A parsed duration: calendar months plus elapsed time, or working days."""

    months: int = 0
    elapsed: timedelta = timedelta(0)
    working_days: int | None = None

    @property
    def is_working_days(self) -> bool:
        return self.working_days is not None


def parse_duration(text: str) -> Duration:
    """Parse a policy duration; ValueError with the reason when it is not one."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string, got {type(text).__name__}")
    wd = _WD.match(text)
    if wd:
        return Duration(working_days=int(wd["n"]))
    m = _ISO.match(text)
    if not m:
        raise ValueError(f'{text!r} is not a duration ("5wd", or ISO-8601 such as "P14D")')
    g = {k: int(v) if v else 0 for k, v in m.groupdict().items()}
    return Duration(
        months=g["y"] * 12 + g["mo"],
        elapsed=timedelta(weeks=g["w"], days=g["d"], hours=g["h"], minutes=g["mi"], seconds=g["s"]),
    )


def add_months(start: datetime, months: int) -> datetime:
    """`start` moved by whole calendar months, the day clamped to the month's end."""
    if not months:
        return start
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    day = min(start.day, calendar.monthrange(year, month + 1)[1])
    return start.replace(year=year, month=month + 1, day=day)


def add_elapsed(start: datetime, duration: Duration) -> datetime:
    """`start` plus an ISO duration (not working days)."""
    if duration.is_working_days:
        raise ValueError("working days need the bank-holiday calendar")
    return add_months(start, duration.months) + duration.elapsed
