"""Working-day arithmetic for workflows, which may not load the bank-holiday calendar."""

from __future__ import annotations

from temporalio import activity

from app.calendar import offsets
from workflows.common import OffsetsRequest, OffsetsResult


@activity.defn(name="offsets")
def add_offsets(request: OffsetsRequest) -> OffsetsResult:
    """`start + d` for each duration; run as a local activity, so it is cheap."""
    return OffsetsResult(
        offsets(request.start, request.durations, request.bank_holidays, request.extra_holidays)
    )
