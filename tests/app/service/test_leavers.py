"""A person leaves (`casework people deactivate`, SCIM `active: false`): no more sign-in,
token or mail, and their open work moves on, recorded in each case. On both databases,
the time-skipping server and a real SMTP sink."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from app import service
from app.service import auth
from app.service.errors import NotFound, Unauthorized
from app.service.leavers import deactivate
from app.service.services import Services
from tests.app.service.test_cases import AUDITOR, EMPLOYEE, OFFICER, act, kinds, open_ipa
from tests.fixtures_temporal import SmtpSink, eventually
from tests.workflows.helpers import escalated
from workflows.common import Actor

CEO = Actor("ceo@dwp.gov.uk", [], "Chief Executive")
SACLEAD = Actor("saclead@dwp.gov.uk", ["sac", "sac_lead"], "SAC Lead")


def token_for(sessions: sessionmaker[Session], email: str) -> str:
    with sessions.begin() as session:
        return auth.issue_token(session, email)


async def test_a_leaver_cannot_sign_in_and_their_endorsement_goes_up_the_chain(
    services: Services,
    time_skipping_env: WorkflowEnvironment,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    token = token_for(services.sessions, "manager@dwp.gov.uk")
    assert (await service.authenticate(services, token=token)).email == "manager@dwp.gov.uk"
    case = await open_ipa(services)
    # Working days: a week and a half is past the due time, so it escalated to the CEO.
    await time_skipping_env.sleep(timedelta(days=10))
    await escalated(services.client.get_workflow_handle(case["id"]), 1)
    await eventually(lambda: len(sink.to(CEO.email)) == 1)  # the escalation

    done = await deactivate(services, email="manager@dwp.gov.uk")
    assert done.was_active and done.tokens_revoked == 1
    assert done.moved == {case["id"]: ["party:requester_manager"]}
    with pytest.raises(Unauthorized):
        await service.authenticate(services, token=token)
    with pytest.raises(Unauthorized):
        await service.actor_for(services, email="manager@dwp.gov.uk")
    with pytest.raises(NotFound):
        token_for(services.sessions, "manager@dwp.gov.uk")

    trail = await kinds(services, case["id"])
    rerouted = [d for k, d in trail if k == "rerouted"]
    assert rerouted == [
        {
            "from": "manager@dwp.gov.uk",
            "to": "ceo@dwp.gov.uk",
            "party": "requester_manager",
            "reason": "deactivated",
        }
    ]
    await eventually(lambda: len(sink.to(CEO.email)) == 2)  # now the endorsement is theirs
    mails_to_manager = len(sink.to("manager@dwp.gov.uk"))
    # The CEO endorses now; the leaver may not, and is never mailed again.
    after = await act(services, CEO, case["id"], "endorse")
    assert after["stage"] == "sac_review"
    await time_skipping_env.sleep(timedelta(days=10))
    assert len(sink.to("manager@dwp.gov.uk")) == mails_to_manager
    # A second run finds nothing left to move.
    again = await deactivate(services, email="manager@dwp.gov.uk")
    assert not again.was_active and again.moved == {}


async def test_a_leavers_assigned_case_is_reassigned_to_an_eligible_manager(
    services: Services,
) -> None:
    case = await open_ipa(services, Actor("loner@dwp.gov.uk", [], "No Manager"))
    await act(services, SACLEAD, case["id"], "reassign", assignee=OFFICER.email)
    done = await deactivate(services, email=OFFICER.email)
    assert done.moved == {case["id"]: [f"reassigned to {SACLEAD.email}"]}
    shown = await service.get_case(services, actor=AUDITOR, case_id=case["id"], owner=True)
    assert shown["assignee"] == SACLEAD.email and shown["owner"] == SACLEAD.email
    trail = await kinds(services, case["id"])
    assert ("reassign", {"assignee": SACLEAD.email}) in trail


async def test_deactivating_an_unknown_person_changes_nothing(services: Services) -> None:
    with pytest.raises(NotFound, match="email: no such person"):
        await deactivate(services, email="nobody@dwp.gov.uk")
    assert (await service.actor_for(services, email=EMPLOYEE.email)).email == EMPLOYEE.email
