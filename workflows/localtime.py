"""The staff's local date, and the end of a local day, inside workflow code.

`zoneinfo` is standard library, passed through the sandbox, and keeps each zone
it has read process-wide. The worker reads the policy's zone before it polls
(`worker.build_worker`), so a workflow task finds it there and reads no file.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_date(instant: datetime, zone: str) -> date:
    """The date `instant` falls on in `zone` (e.g. "Europe/London")."""
    return instant.astimezone(ZoneInfo(zone)).date()


def end_of_local_date(day: date, zone: str) -> datetime:
    """Midnight at the end of `day` in `zone`, as a UTC instant."""
    return datetime.combine(day + timedelta(days=1), time.min, ZoneInfo(zone)).astimezone(UTC)
