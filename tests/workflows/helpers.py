"""What every workflow test does, whatever the case type: load people, start a case and
wait for its opening, act on it, see a refusal, read its events and row, and build
the shipped policy with some stages changed.

Each case type's own module (`ipa_helpers`, `exception_helpers`, `investigation_helpers`,
`referral_helpers`) adds its people, details and case builders on top.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from app.service.people import import_people
from domain.policy import Policy, parse_policy
from models import Case, CaseEvent
from tests.fixtures_temporal import eventually
from workflows.common import ActionRequest, Actor, CaseInput, CaseSnapshot
from workflows.registry import ACT_UPDATE, CASE_TYPES, OPENED_UPDATE, SNAPSHOT_QUERY

SHIPPED_POLICY = Path(__file__).resolve().parents[2] / "domain" / "default_policy.toml"


# The people the tests' directories hold, as the service would look them up: `act`
# passes the one an assigning action names, as the service does (`ActionRequest.assignee`).
DIRECTORY: dict[str, Actor] = {}


def load_people(engine: Engine, people_csv: str) -> None:
    with Session(engine) as session, session.begin():
        import_people(session, people_csv)
    for row in csv.DictReader(io.StringIO(people_csv)):
        roles = [r for r in (row.get("roles") or "").split(";") if r]
        DIRECTORY[row["email"].lower()] = Actor(row["email"].lower(), roles, row["name"])


def shipped_policy() -> Policy:
    """The policy file shipped with the code, parsed afresh (tests change their copy)."""
    return parse_policy(SHIPPED_POLICY.read_bytes())


def policy_with(case_type: str, **stages: dict[str, str]) -> Policy:
    """The shipped policy with some stages of `case_type` overridden, e.g.
    `policy_with("abuse_investigation", triage={"sla": "PT2H"})`."""
    policy = shipped_policy()
    for stage, durations in stages.items():
        for key, value in durations.items():
            setattr(policy.stages[case_type][stage], key, value)
    return policy


async def start(
    client: Client, task_queue: str, inp: CaseInput
) -> tuple[WorkflowHandle[Any, Any], CaseSnapshot]:
    """Start a case of any type and wait until its opening is recorded."""
    handle = await client.start_workflow(
        CASE_TYPES[inp.case.type].workflow,
        inp,
        id=inp.case.id,
        task_queue=task_queue,
        result_type=CaseSnapshot,
    )
    return handle, await handle.execute_update(OPENED_UPDATE, result_type=CaseSnapshot)


ASSIGNING_FIELDS = ("assignee", "investigator", "caseworker")


async def act(
    handle: WorkflowHandle[Any, Any], actor: Actor, action: str, **fields: Any
) -> CaseSnapshot:
    """Take an action as the service would send it: an assigning action carries the
    person it names as the directory (`load_people`) has them."""
    named = next((fields[f] for f in ASSIGNING_FIELDS if isinstance(fields.get(f), str)), None)
    assignee = DIRECTORY.get(named.lower()) if named else None
    request = ActionRequest(action, actor, fields, assignee=assignee)
    after: CaseSnapshot = await handle.execute_update(ACT_UPDATE, request, result_type=CaseSnapshot)
    return after


async def refusal(attempt: Awaitable[Any]) -> ApplicationError:
    """The workflow's refusal of an action: its `type` is the code, its message the reason."""
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await attempt
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def refused_changing_nothing(
    engine: Engine, handle: WorkflowHandle[Any, Any], actor: Actor, action: str, **fields: Any
) -> ApplicationError:
    """Take an action the workflow must refuse: its refusal, once checked that it gives a
    reason and leaves the case (stage, status, due time, audit trail) as it was."""
    before, kinds = await snapshot(handle), event_kinds(engine, handle.id)
    error = await refusal(act(handle, actor, action, **fields))
    after = await snapshot(handle)
    assert error.message
    assert (after.stage, after.status, after.due_at) == (before.stage, before.status, before.due_at)
    assert event_kinds(engine, handle.id) == kinds
    return error


async def snapshot(handle: WorkflowHandle[Any, Any]) -> CaseSnapshot:
    found: CaseSnapshot = await handle.query(SNAPSHOT_QUERY, result_type=CaseSnapshot)
    return found


async def escalated(handle: WorkflowHandle[Any, Any], level: int) -> None:
    """Wait for the open stage to have escalated `level` times: acting while the clock's
    work is still under way can trip the time-skipping server."""

    async def there() -> bool:
        return (await snapshot(handle)).escalation_level == level

    await eventually(there)


def event_kinds(engine: Engine, case_id: str, *, mail: bool = False) -> list[str]:
    """The case's event kinds in order; `emailed` ones (sent in the background) only
    when asked for."""
    with Session(engine) as session:
        rows = session.scalars(
            select(CaseEvent.kind).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
        )
        return [k for k in rows if mail or k != "emailed"]


def events(engine: Engine, case_id: str, kind: str) -> list[CaseEvent]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(CaseEvent)
                .where(CaseEvent.case_id == case_id, CaseEvent.kind == kind)
                .order_by(CaseEvent.seq)
            )
        )


def row(engine: Engine, case_id: str) -> Case:
    """The read model's row of a case."""
    with Session(engine) as session:
        found = session.get(Case, case_id)
        assert found is not None, case_id
        return found
