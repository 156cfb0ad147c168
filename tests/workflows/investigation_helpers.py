"""Building abuse investigations and the people around them for workflow tests (the
steps every type shares are in `tests.workflows.helpers`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from domain.policy import Policy
from tests.today import london_date
from tests.workflows import helpers
from tests.workflows.helpers import escalated as escalated
from tests.workflows.helpers import start as start
from workflows import investigation_types as abu
from workflows.common import Actor, CaseInput, CaseSnapshot
from workflows.rules import clean_fields, parties_from_details

# The perpetrator is a manager: one target reports to them (so the welfare note passes
# over them to the director), and so does the investigator (so escalations do too).
PEOPLE = """email,name,manager_email,roles
ceo@dwp.gov.uk,Chief Executive,,
director@dwp.gov.uk,Director,ceo@dwp.gov.uk,
perp@dwp.gov.uk,Mallory Manager,director@dwp.gov.uk,
target@dwp.gov.uk,Tara Target,perp@dwp.gov.uk,
target2@dwp.gov.uk,Tom Target,manager@dwp.gov.uk,
manager@dwp.gov.uk,Line Manager,director@dwp.gov.uk,
reporter@dwp.gov.uk,Reporter,manager@dwp.gov.uk,
investigator@dwp.gov.uk,Investigator,perp@dwp.gov.uk,sirt
investigator2@dwp.gov.uk,Second Investigator,sirtlead@dwp.gov.uk,sirt
sirtlead@dwp.gov.uk,SIRT Lead,director@dwp.gov.uk,sirt;sirt_lead
sirtlead2@dwp.gov.uk,Second SIRT Lead,director@dwp.gov.uk,sirt;sirt_lead
hr@dwp.gov.uk,HR Officer,hrlead@dwp.gov.uk,hr
hrlead@dwp.gov.uk,HR Lead,director@dwp.gov.uk,hr;hr_lead
auditor@dwp.gov.uk,Auditor,ceo@dwp.gov.uk,auditor
admin@dwp.gov.uk,Administrator,,admin
"""

REPORTER = Actor("reporter@dwp.gov.uk", [], "Reporter")
PERPETRATOR = Actor("perp@dwp.gov.uk", [], "Mallory Manager")
TARGET = Actor("target@dwp.gov.uk", [], "Tara Target")
TARGET2 = Actor("target2@dwp.gov.uk", [], "Tom Target")
INVESTIGATOR = Actor("investigator@dwp.gov.uk", ["sirt"], "Investigator")
INVESTIGATOR2 = Actor("investigator2@dwp.gov.uk", ["sirt"], "Second Investigator")
SIRT_LEAD = Actor("sirtlead@dwp.gov.uk", ["sirt", "sirt_lead"], "SIRT Lead")
SIRT_LEAD2 = Actor("sirtlead2@dwp.gov.uk", ["sirt", "sirt_lead"], "Second SIRT Lead")
HR = Actor("hr@dwp.gov.uk", ["hr"], "HR Officer")
ADMIN = Actor("admin@dwp.gov.uk", ["admin"], "Administrator")

SUMMARY = "Sent a colleague abusive messages on X over three weeks"
DETAILS: dict[str, Any] = {
    "category": "cyberbullying",
    "platform": "X",
    "description": "Abusive replies to a colleague's posts",
    "occurred_on": london_date(-7),
    "source": "staff_report",
    "content_urls": ["https://x.example/post/1"],
    "targets": [TARGET.email, TARGET2.email],
    "perpetrator": {"kind": "employee", "email": PERPETRATOR.email},
}
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def load_people(engine: Engine) -> None:
    helpers.load_people(engine, PEOPLE)


def policy(**stages: dict[str, str]) -> Policy:
    """The shipped policy, with investigation stages overridden (e.g. on short ISO durations)."""
    return helpers.policy_with(abu.TYPE, **stages)


def fast_policy() -> Policy:
    """Plain elapsed time, short enough to watch every clock run out."""
    return policy(
        triage={"sla": "PT2H", "remind": "PT1H", "escalate_every": "PT1H"},
        investigation={"sla": "P10D", "remind": "P5D", "escalate_every": "P1D"},
        review={"sla": "P5D", "remind": "P3D", "escalate_every": "P1D"},
    )


def new_investigation(shipped: Policy, *, reporter: Actor = REPORTER, **changes: Any) -> CaseInput:
    """An investigation as the service opens it: details cleaned, parties from them."""
    now = datetime.now(UTC)
    details = clean_fields(abu.RULES.details, {**DETAILS, **changes})
    parties = {**parties_from_details(abu.RULES, details), "requester": reporter.email}
    case = CaseSnapshot(
        id=f"ABU-T-{uuid.uuid4().hex[:10]}",
        type=abu.TYPE,
        status="open",
        stage=abu.STAGES[0],
        requester=reporter.email,
        opened_at=now,
        updated_at=now,
        team=abu.RULES.team,
        details=details,
        parties=parties,
        policy_version=shipped.version,
        confidential=True,
    )
    return CaseInput(case=case, policy=shipped.for_case(abu.TYPE))
