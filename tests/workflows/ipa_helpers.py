"""Building IPA cases and people for workflow tests (the steps every type shares are in
`tests.workflows.helpers`, also importable from here)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from domain.policy import Policy
from tests.workflows import helpers
from tests.workflows.helpers import act as act
from tests.workflows.helpers import event_kinds as event_kinds
from tests.workflows.helpers import events as events
from tests.workflows.helpers import shipped_policy as shipped_policy
from tests.workflows.helpers import start as start
from workflows import ipa_types
from workflows.common import Actor, CaseInput, CaseSnapshot

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
    helpers.load_people(engine, PEOPLE)


def fast_policy(**overrides: str) -> Policy:
    """The shipped policy with IPA stages on short ISO durations, for escalation tests."""
    policy = shipped_policy()
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
