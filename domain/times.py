"""Times as text: the one formatter of instants, for people and for machines.

The API, the records and the audit trail keep ISO-8601 UTC (`iso`; `iso_exact` with
microseconds, the form the audit chain hashes and exports carry); the pages, the
emails and the CLI's tables show the same instant where the staff are, in the
policy's time zone with its abbreviation ("Wed 9 Dec 2026, 17:00 GMT", "BST" in
summer: `short`, `long`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from domain.calendar import DEFAULT_TIMEZONE, zone


def instant(value: object) -> datetime | None:
    """An ISO-8601 instant (text, `Z` allowed) or a datetime as aware UTC; None otherwise.
    A naive one is taken as UTC, as the records store them."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _local(value: object, timezone: str | ZoneInfo) -> datetime | None:
    moment = instant(value)
    if moment is None:
        return None
    return moment.astimezone(timezone if isinstance(timezone, ZoneInfo) else zone(timezone))


def short(value: object, timezone: str | ZoneInfo = DEFAULT_TIMEZONE) -> str:
    """`Wed 9 Dec 2026, 17:00 GMT`, for tables and pages; blank for none, anything that is
    not an instant as given."""
    local = _local(value, timezone)
    if local is None:
        return "" if value is None else str(value)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M %Z}"


def long(value: object, timezone: str | ZoneInfo = DEFAULT_TIMEZONE) -> str:
    """`Wednesday 9 December 2026 at 17:00 GMT`, for sentences (emails)."""
    local = _local(value, timezone)
    if local is None:
        return "" if value is None else str(value)
    return f"{local:%A} {local.day} {local:%B %Y at %H:%M %Z}"


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`, as the API promises."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_exact(at: datetime) -> str:
    """The one text form of an instant in hashes: microseconds, UTC, `Z`."""
    # astimezone() would silently read a naive time as the machine's local time.
    if at.tzinfo is None:
        raise ValueError("naive datetime: event times must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
