"""Building IPA cases and people for workflow tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowHandle

from app.people import import_people
from app.policy import Policy, load_policy, parse_policy
from models import CaseEvent
from workflows import ipa_types
from workflows.common import ActionRequest, Actor, CaseInput, CaseSnapshot
from workflows.registry import ACT_UPDATE, OPENED_UPDATE

PEOPLE = """email,name,manager_email,roles
ceo@dwp.gov.uk,Chief Executive,,
director@dwp.gov.uk,Director,ceo@dwp.gov.uk,
manager@dwp.gov.uk,Line Manager,director@dwp.gov.uk,
employee@dwp.gov.uk,Employee,manager@dwp.gov.uk,
officer@dwp.gov.uk,SAC Officer,saclead@dwp.gov.uk,sac
officer2@dwp.gov.uk,Second SAC Officer,saclead@dwp.gov.uk,sac
saclead@dwp.gov.uk,SAC Lead,director@dwp.gov.uk,sac;sac_lead
admin@dwp.gov.uk,Administrator,,admin
"""

EMPLOYEE = Actor("employee@dwp.gov.uk", [])
MANAGER = Actor("manager@dwp.gov.uk", [])
OFFICER = Actor("officer@dwp.gov.uk", ["sac"])
SAC_LEAD = Actor("saclead@dwp.gov.uk", ["sac", "sac_lead"])
ADMIN = Actor("admin@dwp.gov.uk", ["admin"])

DETAILS: dict[str, Any] = {
    "account_kind": "individual_professional",
    "platform": "X",
    "handle": "@dwp_employee",
    "justification": "Promote DWP job fairs",
    "device": "dwp_managed",
    "contact_email": "employee@dwp.gov.uk",
}


def load_people(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        import_people(session, PEOPLE)


def shipped_policy() -> Policy:
    return load_policy(Path(__file__).resolve().parents[2] / "app" / "default_policy.toml")


def fast_policy(**overrides: str) -> Policy:
    """The shipped policy with IPA stages on short ISO durations, for escalation tests."""
    text = (Path(__file__).resolve().parents[2] / "app" / "default_policy.toml").read_text()
    policy = parse_policy(text)
    stage = policy.stages["ipa_approval"]
    stage["manager_endorsement"].sla = overrides.get("sla", "PT1H")
    stage["manager_endorsement"].remind = overrides.get("remind", "PT30M")
    stage["manager_endorsement"].escalate_every = overrides.get("escalate_every", "PT1H")
    stage["awaiting_info"].remind = "P2D"
    stage["awaiting_info"].extra["lapse"] = "P5D"
    return policy


def new_case(
    policy: Policy, *, details: dict[str, Any] | None = None, manager: str | None = None
) -> CaseInput:
    now = datetime.now(UTC)
    case_id = f"IPA-T-{uuid.uuid4().hex[:10]}"
    parties = {"requester": EMPLOYEE.email}
    parties["requester_manager"] = manager if manager is not None else MANAGER.email
    if not parties["requester_manager"]:
        del parties["requester_manager"]
    case = CaseSnapshot(
        id=case_id,
        type=ipa_types.TYPE,
        status="open",
        stage=ipa_types.STAGES[0],
        requester=EMPLOYEE.email,
        opened_at=now,
        updated_at=now,
        team=ipa_types.RULES.team,
        details=dict(details or DETAILS),
        parties=parties,
        policy_version=policy.version,
    )
    return CaseInput(case=case, policy=policy.for_case(ipa_types.TYPE))


async def start(
    client: Client, task_queue: str, inp: CaseInput
) -> tuple[WorkflowHandle[Any, Any], CaseSnapshot]:
    handle = await client.start_workflow(
        ipa_types.RULES.workflow,
        inp,
        id=inp.case.id,
        task_queue=task_queue,
        result_type=CaseSnapshot,
    )
    snapshot = await handle.execute_update(OPENED_UPDATE, result_type=CaseSnapshot)
    return handle, snapshot


async def act(
    handle: WorkflowHandle[Any, Any], actor: Actor, action: str, **fields: Any
) -> CaseSnapshot:
    return await handle.execute_update(
        ACT_UPDATE, ActionRequest(action, actor, fields), result_type=CaseSnapshot
    )


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
