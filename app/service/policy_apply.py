"""A new policy file reaches the cases already open (`casework policy apply FILE`).

Every case runs under the policy it opened with (`CaseInput.policy`, its version on
the case row). Applying a new file tells each open case, listed from the read model,
to run under its type's part of the new file: the workflow re-plans the open stage's
clock from the stage's start under the new SLAs and calendar and records a
`policy_changed` event with the old and new due times (`CaseWorkflow.policy_changed`).

A dry run asks each case what it would re-plan from (a query: nothing is written,
not even to Temporal's history) and counts the days with the calendar the workflow's
`offsets` activity uses, so what it lists is what applying would do.

New cases keep opening under the file the web and worker processes loaded at start:
point `CASEWORK_POLICY_FILE` at the new file and restart them too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from app.service.errors import temporal_errors
from app.service.services import Services
from domain.policy import Policy
from models import Case
from workflows.common import OPEN, ClockPlan, PolicyChange, PolicyChangeResult, PolicyPreview
from workflows.registry import POLICY_PREVIEW_QUERY, POLICY_UPDATE

# Cases told at once: enough to finish thousands in minutes, few enough to spare the cluster.
CONCURRENCY = 8


@dataclass(frozen=True)
class OpenCase:
    id: str
    type: str
    policy_version: str


@dataclass(frozen=True)
class CaseMove:
    """What a policy change does (or would do) to one open case."""

    case_id: str
    type: str
    stage: str
    old_version: str
    old_due: datetime | None
    new_due: datetime | None
    # "moved" / "unchanged" (due time stays), "current" (already under this version),
    # "closed" (closed since the read model was read).
    outcome: str

    @property
    def moves(self) -> bool:
        return self.outcome == "moved"


def open_cases(session: Session) -> list[OpenCase]:
    rows = session.execute(
        select(Case.id, Case.type, Case.policy_version).where(Case.status == OPEN).order_by(Case.id)
    )
    return [OpenCase(r.id, r.type, r.policy_version) for r in rows]


def due_under(plan: ClockPlan | None, policy: Policy) -> datetime | None:
    """The due time a plan gives on `policy`'s calendar (as the workflow counts it)."""
    if plan is None or plan.due is None:
        return None
    start = plan.start
    calendar = policy.calendar
    if plan.start_after:
        start = calendar.add(start, plan.start_after)
    return calendar.add(start, plan.due)


async def _preview(svc: Services, case: OpenCase, policy: Policy) -> CaseMove:
    handle = svc.client.get_workflow_handle(case.id)
    preview = await handle.query(
        POLICY_PREVIEW_QUERY, policy.for_case(case.type), result_type=PolicyPreview
    )
    if preview.version == policy.version:
        return _move(case, preview.stage, preview.due_at, preview.due_at, "current")
    new_due = due_under(preview.plan, policy) if preview.plan else preview.due_at
    outcome = "moved" if new_due != preview.due_at else "unchanged"
    return _move(case, preview.stage, preview.due_at, new_due, outcome, preview.version)


async def _apply(svc: Services, case: OpenCase, policy: Policy) -> CaseMove:
    handle = svc.client.get_workflow_handle(case.id)
    result = await handle.execute_update(
        POLICY_UPDATE, PolicyChange(policy.for_case(case.type)), result_type=PolicyChangeResult
    )
    if not result.changed:
        return _move(case, result.stage, result.old_due, result.new_due, "current")
    outcome = "moved" if result.new_due != result.old_due else "unchanged"
    return _move(case, result.stage, result.old_due, result.new_due, outcome, result.old_version)


def _move(
    case: OpenCase,
    stage: str,
    old_due: datetime | None,
    new_due: datetime | None,
    outcome: str,
    old_version: str | None = None,
) -> CaseMove:
    version = old_version if old_version is not None else case.policy_version
    return CaseMove(case.id, case.type, stage, version, old_due, new_due, outcome)


async def _closed_meanwhile(step: Callable[[], Awaitable[CaseMove]], case: OpenCase) -> CaseMove:
    """The read model lags Temporal: a case that has just closed is no error."""
    try:
        return await step()
    except RPCError as e:
        if e.status != RPCStatusCode.NOT_FOUND:
            raise
    except (WorkflowQueryFailedError, WorkflowUpdateFailedError) as e:
        if "completed" not in str(e) and "closed" not in str(e):
            raise
    return _move(case, "", None, None, "closed")


async def apply_policy(svc: Services, *, policy: Policy, dry_run: bool) -> list[CaseMove]:
    """Tell every open case to run under `policy` (or, dry, say what would move), by id."""
    cases = await svc.run(open_cases)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(case: OpenCase) -> CaseMove:
        step = _preview if dry_run else _apply
        async with gate:
            return await _closed_meanwhile(lambda: step(svc, case, policy), case)

    with temporal_errors():
        return list(await asyncio.gather(*(one(c) for c in cases)))
