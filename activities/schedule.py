"""Working-day arithmetic for workflows, which may not load the bank-holiday calendar."""

from __future__ import annotations

from temporalio import activity

from domain.calendar import WorkingCalendar
from workflows.common import OffsetsRequest, OffsetsResult
from workflows.registry import OFFSETS_ACTIVITY


@activity.defn(name=OFFSETS_ACTIVITY)
def add_offsets(request: OffsetsRequest) -> OffsetsResult:
    """`start + d` (or `start - d`) for each duration; run as a local activity, so cheap."""
    calendar = WorkingCalendar.of(
        request.bank_holidays,
        request.extra_holidays,
        request.timezone or None,
        request.working_day_ends,
    )
    if request.before:
        return OffsetsResult([calendar.subtract(request.start, d) for d in request.durations])
    return OffsetsResult(calendar.offsets(request.start, request.durations))
