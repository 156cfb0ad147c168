"""An abuse investigation through the service layer, and the people around it, for the
API tests (confidentiality, evidence). Adds to the people of `tests/app/conftest.py`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import nullcontext
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from app import service
from app.runtime.webapp import create_app
from app.service.auth import issue_token
from app.service.people import import_people
from app.service.services import Services
from tests.today import london_date
from workflows import investigation_types as abu
from workflows import referral_types as dis
from workflows.common import Actor

MORE_PEOPLE = """email,name,manager_email,roles
sirtlead@dwp.gov.uk,SIRT Lead,ceo@dwp.gov.uk,sirt;sirt_lead
hr@dwp.gov.uk,HR Officer,hrlead@dwp.gov.uk,hr
hrlead@dwp.gov.uk,HR Lead,ceo@dwp.gov.uk,hr;hr_lead
admin@dwp.gov.uk,Administrator,,admin
reporter@dwp.gov.uk,Reporter,manager@dwp.gov.uk,
perp@dwp.gov.uk,Perpetrator,manager@dwp.gov.uk,
target@dwp.gov.uk,Target,manager@dwp.gov.uk,
investigator@dwp.gov.uk,Appointed Investigator,manager@dwp.gov.uk,sirt
perplead@dwp.gov.uk,Perpetrator In SIRT,ceo@dwp.gov.uk,sirt;sirt_lead;auditor;admin
subjecthr@dwp.gov.uk,Subject In HR,ceo@dwp.gov.uk,hr;hr_lead;auditor;admin
"""

REPORTER = Actor("reporter@dwp.gov.uk", [], "Reporter")
HR = Actor("hr@dwp.gov.uk", ["hr"], "HR Officer")
# Parties in conflict who hold every role that would otherwise show them the case whole.
PERPETRATOR_IN_SIRT = Actor("perplead@dwp.gov.uk", ["sirt", "sirt_lead", "auditor", "admin"])
SUBJECT_IN_HR = Actor("subjecthr@dwp.gov.uk", ["hr", "hr_lead", "auditor", "admin"])
SIRT_LEAD = Actor("sirtlead@dwp.gov.uk", ["sirt", "sirt_lead"], "SIRT Lead")
# A SIRT investigator (API.md: an investigator holds the role the stage needs).
INVESTIGATOR = Actor("investigator@dwp.gov.uk", ["sirt"], "Appointed Investigator")

# A word only the investigation's details hold, to search for.
SECRET_WORD = "zanzibar"
DETAILS: dict[str, Any] = {
    "category": "harassment",
    "platform": "Facebook",
    "description": f"Posts about a colleague in the {SECRET_WORD} group",
    "occurred_on": london_date(-7),
    "source": "routine_monitoring",
    "content_urls": ["https://facebook.example/groups/1/posts/2"],
    "targets": ["target@dwp.gov.uk"],
    "perpetrator": {"kind": "employee", "email": "perp@dwp.gov.uk"},
}


def add_people(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        import_people(session, MORE_PEOPLE)


def bearer(sessions: sessionmaker[Session], *emails: str) -> dict[str, dict[str, str]]:
    with sessions.begin() as session:
        return {e: {"Authorization": f"Bearer {issue_token(session, e)}"} for e in emails}


async def open_investigation(
    svc: Services, *, assign: bool = True, reporter: Actor = REPORTER, **changes: Any
) -> str:
    """Reported by `reporter`, with DETAILS but for `changes`; with `assign`, in
    `investigation` with INVESTIGATOR on it."""
    details = {**DETAILS, **changes}
    case = await service.open_case(svc, actor=reporter, case_type=abu.TYPE, details=details)
    if assign:
        fields = {"investigator": INVESTIGATOR.email}
        await service.act(svc, actor=SIRT_LEAD, case_id=case["id"], action="assign", fields=fields)
    case_id: str = case["id"]
    return case_id


async def open_referral(svc: Services, subject: Actor = SUBJECT_IN_HR) -> str:
    """A referral HR opens about `subject`, waiting in `hr_review`."""
    details = {
        "subject": subject.email,
        "breach": f"Shared a claimant's details in the {SECRET_WORD} group",
        "policy_sections": "6.2",
        "criminal_consideration": False,
    }
    case = await service.open_case(svc, actor=HR, case_type=dis.TYPE, details=details)
    case_id: str = case["id"]
    return case_id


async def http_client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(lambda: nullcontext(services))
    # httpx's transport runs no lifespan: enter it here, as uvicorn would.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://casework.test"
        ) as client,
    ):
        yield client
