"""The service-level badge of a case, as My work and the case page show it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.sla import sla_badge

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def case(due: datetime | None, **more: Any) -> dict[str, Any]:
    due_at = due.isoformat().replace("+00:00", "Z") if due else None
    return {"status": "open", "due_at": due_at, "overdue": False, "escalation_level": 0, **more}


def test_on_time_due_soon_and_overdue_with_the_escalation_level() -> None:
    assert sla_badge(case(NOW + timedelta(days=3)), NOW).text == "On time"
    assert sla_badge(case(NOW + timedelta(hours=23)), NOW).kind == "due-soon"
    assert sla_badge(case(NOW - timedelta(minutes=1)), NOW).text == "Overdue"
    late = case(NOW - timedelta(days=4), overdue=True, escalation_level=2)
    assert sla_badge(late, NOW).text == "Overdue, escalation level 2"
    assert sla_badge(late, NOW).kind == "overdue"


def test_no_due_time_closed_and_outline() -> None:
    assert sla_badge(case(None), NOW).text == "No due time"  # waiting on the requester
    closed = {"status": "closed", "outcome": "no_further_action"}
    assert sla_badge(closed, NOW).text == "Closed: no further action"
    outline = {"id": "ABU-2026-000001", "status": "open", "stage": "triage"}
    assert sla_badge(outline, NOW).kind == "none"
