"""A case's service-level badge: on time, due soon, or overdue with its escalation level."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain import text, times

DUE_SOON = timedelta(days=1)  # within a day of its due time a case stands out


@dataclass(frozen=True)
class Badge:
    kind: str  # on-time, due-soon, overdue, closed, none: the CSS class's suffix
    text: str


def sla_badge(case: dict[str, Any], now: datetime | None = None) -> Badge:
    """The badge for an API case object, as this viewer sees it (an outline has none)."""
    if case.get("status") != "open":
        outcome = text.words(case.get("outcome"))
        return Badge("closed", f"Closed: {outcome}" if outcome else "Closed")
    if "due_at" not in case:  # a confidential case's outline: its due time is not shown
        return Badge("none", "Not shown")
    now = now or datetime.now(UTC)
    due = times.instant(case.get("due_at"))
    level = int(case.get("escalation_level") or 0)
    if case.get("overdue") or (due is not None and due <= now):
        return Badge("overdue", f"Overdue, escalation level {level}" if level else "Overdue")
    if due is None:  # waiting on the requester stops the clock
        return Badge("none", "No due time")
    if due - now <= DUE_SOON:
        return Badge("due-soon", "Due soon")
    return Badge("on-time", "On time")
