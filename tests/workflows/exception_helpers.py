"""Building policy exceptions, and reading what they did, for workflow tests (the steps
every type shares are in `tests.workflows.helpers`)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from temporalio.client import Client, WorkflowHandle

from domain.calendar import WorkingCalendar
from domain.policy import Policy
from tests.workflows import helpers
from tests.workflows.helpers import act, shipped_policy
from tests.workflows.helpers import row as row
from tests.workflows.helpers import snapshot as snapshot
from tests.workflows.helpers import start as start
from tests.workflows.ipa_helpers import DETAILS as IPA_DETAILS
from tests.workflows.ipa_helpers import (
    EMPLOYEE,
    MANAGER,
    OFFICER,
    PEOPLE,
    SAC_LEAD,
    new_case,
)
from workflows import exception_types as pex
from workflows import ipa_types as ipa
from workflows.common import Actor, CaseInput, CaseSnapshot
from workflows.registry import OPENED_UPDATE

# The IPA tests' people, and a second SAC lead: four eyes needs two.
OFFICER2 = Actor("officer2@dwp.gov.uk", ["sac"])
SAC_LEAD2 = Actor("saclead2@dwp.gov.uk", ["sac", "sac_lead"])
MORE_PEOPLE = "saclead2@dwp.gov.uk,Second SAC Lead,director@dwp.gov.uk,sac;sac_lead\n"

DETAILS: dict[str, Any] = {
    "policy_section": "5.1",
    "requirement": "Post to the DWP careers account from a personal phone at job fairs",
    "justification": "Job fairs are held where DWP devices cannot connect",
    "risk": "Account credentials held on an unmanaged device",
    "compensating_controls": "Multi-factor authentication; no DWP data on the phone",
    "duration_days": 30,
}


def load_people(engine: Engine) -> None:
    helpers.load_people(engine, PEOPLE + MORE_PEOPLE)


def exception_policy(**active: str) -> Policy:
    """The shipped policy; `active` overrides keys of the active stage (`expiry_notice`)."""
    policy = shipped_policy()
    stages = policy.stages[pex.TYPE]
    stages[pex.AWAITING_INFO].remind = "P2D"
    stages[pex.AWAITING_INFO].extra["lapse"] = "P5D"
    stages[pex.ACTIVE].extra.update(active)
    return policy


def new_exception(policy: Policy, *, requester: Actor = EMPLOYEE, **details: Any) -> CaseInput:
    """A policy exception as the service opens it."""
    now = datetime.now(UTC)
    case = CaseSnapshot(
        id=f"PEX-T-{uuid.uuid4().hex[:10]}",
        type=pex.TYPE,
        status="open",
        stage=pex.TRIAGE,
        requester=requester.email,
        opened_at=now,
        updated_at=now,
        team=pex.RULES.team,
        details={**DETAILS, **details},
        parties={"requester": requester.email},
        policy_version=policy.version,
    )
    return CaseInput(case=case, policy=policy.for_case(pex.TYPE))


def working_days_before(end: datetime, n: int, region: str = "GB-ENG") -> datetime:
    """The end (17:00 London) of the n-th working day before `end`'s London date: counted
    one day at a time."""
    calendar = WorkingCalendar.of(region)
    day: date = calendar.local_date(end)
    for _ in range(n):
        day -= timedelta(days=1)
        while not calendar.is_working_day(day):
            day -= timedelta(days=1)
    return datetime.combine(day, time(17), ZoneInfo("Europe/London")).astimezone(UTC)


async def to_decision(handle: WorkflowHandle[Any, Any], assessor: Actor = OFFICER2) -> CaseSnapshot:
    await act(handle, OFFICER, "accept")
    return await act(handle, assessor, "submit_assessment", risk_rating="medium", assessment="OK")


async def to_active(handle: WorkflowHandle[Any, Any]) -> CaseSnapshot:
    await to_decision(handle)
    return await act(handle, SAC_LEAD, "approve")


async def personal_ipa(client: Client, task_queue: str, **details: str) -> WorkflowHandle[Any, Any]:
    """An IPA for use from a personal device, endorsed: waiting on the SAC's approval."""
    inp = new_case(shipped_policy(), details={**IPA_DETAILS, "device": "personal", **details})
    handle, _ = await start(client, task_queue, inp)
    await act(handle, MANAGER, "endorse")
    return handle


async def raised_exception(client: Client, ipa_case: CaseSnapshot) -> WorkflowHandle[Any, Any]:
    """The policy exception an IPA raised, once its opening is recorded."""
    [link] = [link for link in ipa_case.links if link.relation == ipa.EXCEPTION]
    handle = client.get_workflow_handle(link.id, result_type=CaseSnapshot)
    await handle.execute_update(OPENED_UPDATE, result_type=CaseSnapshot)
    return handle
