"""Building disciplinary referrals and the people around them for workflow tests (the
steps every type shares are in `tests.workflows.helpers`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from domain.policy import Policy
from tests.workflows import helpers
from tests.workflows.helpers import start as start
from workflows import referral_types as dis
from workflows.common import Actor, CaseInput, CaseSnapshot

# The caseworker reports to the subject (a senior manager under referral): the
# subject sits in the escalation chain of the hearing, and must be passed over.
PEOPLE = """email,name,manager_email,roles
ceo@dwp.gov.uk,Chief Executive,,
director@dwp.gov.uk,Director,ceo@dwp.gov.uk,
subject@dwp.gov.uk,Subject,director@dwp.gov.uk,
caseworker@dwp.gov.uk,Caseworker,subject@dwp.gov.uk,hr
caseworker2@dwp.gov.uk,Hearing Manager,director@dwp.gov.uk,hr
hr@dwp.gov.uk,HR Officer,hrlead@dwp.gov.uk,hr
hrlead@dwp.gov.uk,HR Lead,director@dwp.gov.uk,hr;hr_lead
colleague@dwp.gov.uk,Colleague,director@dwp.gov.uk,
auditor@dwp.gov.uk,Auditor,ceo@dwp.gov.uk,auditor
admin@dwp.gov.uk,Administrator,,admin
"""

HR = Actor("hr@dwp.gov.uk", ["hr"], "HR Officer")
HR_LEAD = Actor("hrlead@dwp.gov.uk", ["hr", "hr_lead"], "HR Lead")
CASEWORKER = Actor("caseworker@dwp.gov.uk", ["hr"], "Caseworker")
# A second HR caseworker (a hearing manager): the case may be handed to them.
CASEWORKER2 = Actor("caseworker2@dwp.gov.uk", ["hr"], "Hearing Manager")
SUBJECT = Actor("subject@dwp.gov.uk", [], "Subject")
OUTSIDER = Actor("colleague@dwp.gov.uk", [], "Colleague")
AUDITOR = Actor("auditor@dwp.gov.uk", ["auditor"], "Auditor")
ADMIN = Actor("admin@dwp.gov.uk", ["admin"], "Administrator")

BREACH = "Posted screenshots of a claimant's record on a personal account"
DETAILS: dict[str, Any] = {
    "subject": SUBJECT.email,
    "breach": BREACH,
    "policy_sections": "6.2, 6.4",
    "source_case": "ABU-2026-000001",
    "criminal_consideration": True,
}


def load_people(engine: Engine) -> None:
    helpers.load_people(engine, PEOPLE)


def policy(**stages: dict[str, str]) -> Policy:
    """The shipped policy, with referral stages overridden (e.g. on short ISO durations)."""
    return helpers.policy_with(dis.TYPE, **stages)


def fast_policy() -> Policy:
    """Plain elapsed time, short enough to watch every clock run out."""
    return policy(
        hr_review={"sla": "PT2H", "remind": "PT1H", "escalate_every": "PT1H"},
        hearing={"sla": "P10D", "remind": "P5D", "escalate_every": "P1D"},
        appeal_window={"sla": "P5D"},
        appeal={"sla": "P10D", "remind": "P5D", "escalate_every": "P2D"},
    )


def new_referral(
    shipped: Policy,
    *,
    details: dict[str, Any] | None = None,
    requester: Actor = HR,
    subject_party: bool = True,
) -> CaseInput:
    """A referral as the service opens it; without `subject_party`, as a case raising it
    might forget to name the subject (the workflow reads it from the details)."""
    now = datetime.now(UTC)
    case_id = f"DIS-T-{uuid.uuid4().hex[:10]}"
    given = dict(details or DETAILS)
    parties = {"requester": requester.email}
    if subject_party:
        parties["subject"] = given["subject"]
    case = CaseSnapshot(
        id=case_id,
        type=dis.TYPE,
        status="open",
        stage=dis.STAGES[0],
        requester=requester.email,
        opened_at=now,
        updated_at=now,
        team=dis.RULES.team,
        details=given,
        parties=parties,
        policy_version=shipped.version,
        confidential=True,
    )
    return CaseInput(case=case, policy=shipped.for_case(dis.TYPE))
