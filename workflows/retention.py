"""The retention run: closed cases past their type's retention (policy file,
`[retention.<type>]`) are anonymised or purged, once a day, started by a Temporal
schedule (`domain.retention.ensure_schedule`). Standard library and temporalio only.

The work is one activity (`apply_retention`): each case is dealt with in a
transaction of its own and at most once, so a retry carries on where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow

RETENTION_WORKFLOW = "retention"
RETENTION_ACTIVITY = "apply_retention"


@dataclass
class RetentionRun:
    """What the schedule starts the workflow with (nothing yet: the policy is the worker's)."""


@dataclass
class RetentionRequest:
    now: datetime  # the workflow's time: retention is judged as of the run


@dataclass
class RetentionResult:
    anonymised: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)


@workflow.defn(name=RETENTION_WORKFLOW)
class RetentionWorkflow:
    @workflow.run
    async def run(self, run: RetentionRun) -> RetentionResult:
        result: RetentionResult = await workflow.execute_activity(
            RETENTION_ACTIVITY,
            RetentionRequest(now=workflow.now()),
            result_type=RetentionResult,
            # Thousands of cases, each a short transaction: well within the hour.
            start_to_close_timeout=timedelta(hours=1),
        )
        return result
