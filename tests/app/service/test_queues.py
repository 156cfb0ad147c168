"""Queues that match the work (issue 14, finding 4), and need to know in lists (finding 2),
on the read model, on SQLite and PostgreSQL:

- a team's queue (`queue=sac`) holds its cases at the team's own stages, not those
  waiting on a manager's endorsement or on the leads alone;
- a decision only a lead may take waits in every such lead's "Waiting on me"
  (`assignee=me`), and in nobody else's;
- a manager's "Escalated to me" (`escalated_to=me`) holds what an escalation took to
  them, kept by the record activity and cleared when the escalation ends;
- an IPA is listed for its requester's management chain, however far up, and for
  nobody outside it without a role that sees it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities.records import RecordActivities
from app import service
from app.service.services import Services
from domain.records import upsert_case
from workflows import exception_types as pex
from workflows import ipa_types as ipa
from workflows.common import CaseSnapshot, EventIn, RecordRequest

EMPLOYEE, MANAGER, CEO = "employee@dwp.gov.uk", "manager@dwp.gov.uk", "ceo@dwp.gov.uk"
OFFICER, SAC_LEAD = "officer@dwp.gov.uk", "saclead@dwp.gov.uk"


def snapshot(case_id: str, case_type: str, stage: str, **changes: Any) -> CaseSnapshot:
    now = datetime.now(UTC)
    return CaseSnapshot(
        id=case_id,
        type=case_type,
        status="open",
        stage=stage,
        requester=EMPLOYEE,
        opened_at=now - timedelta(days=1),
        updated_at=now,
        team="sac",
        parties={"requester": EMPLOYEE, "requester_manager": MANAGER},
        **changes,
    )


@pytest.fixture
def cases(offline_services: Services) -> dict[str, CaseSnapshot]:
    made = {
        "endorsing": snapshot("IPA-Q-1", ipa.TYPE, ipa.MANAGER_ENDORSEMENT, owner=MANAGER),
        "reviewing": snapshot("IPA-Q-2", ipa.TYPE, ipa.SAC_REVIEW),
        "assigned": snapshot("IPA-Q-3", ipa.TYPE, ipa.SAC_REVIEW, assignee=OFFICER, owner=OFFICER),
        "deciding": snapshot("PEX-Q-1", pex.TYPE, pex.DECISION, assignee=OFFICER),
        "triage": snapshot("PEX-Q-2", pex.TYPE, pex.TRIAGE),
    }
    with offline_services.sessions.begin() as session:
        for case in made.values():
            upsert_case(session, case)
    return made


async def ids(svc: Services, email: str, **filters: Any) -> set[str]:
    actor = await service.actor_for(svc, email=email)
    items, total = await service.list_cases(svc, actor=actor, **filters)
    assert total == len(items)
    return {i["id"] for i in items}


async def test_a_team_queue_holds_only_the_teams_own_stages(
    offline_services: Services, cases: dict[str, CaseSnapshot]
) -> None:
    queue = await ids(offline_services, OFFICER, queue="sac")
    assert queue == {"IPA-Q-2", "IPA-Q-3", "PEX-Q-2"}
    # `team=` keeps its meaning: every case the team owns.
    assert await ids(offline_services, OFFICER, team="sac") == {c.id for c in cases.values()}


async def test_a_lead_only_decision_waits_on_each_lead(
    offline_services: Services, cases: dict[str, CaseSnapshot]
) -> None:
    # The officer who triaged it is still its assignee, but it does not wait on them.
    assert await ids(offline_services, SAC_LEAD, assignee="me") == {"PEX-Q-1"}
    assert await ids(offline_services, OFFICER, assignee="me") == {"IPA-Q-3"}
    assert await ids(offline_services, MANAGER, assignee="me") == {"IPA-Q-1"}
    shown = await service.get_case(
        offline_services,
        actor=await service.actor_for(offline_services, email=SAC_LEAD),
        case_id="PEX-Q-1",
        owner=True,
    )
    assert (shown["owner"], shown["queue"]) == (None, "sac_lead")


async def test_escalated_to_me_lasts_as_long_as_the_escalation(
    offline_services: Services, cases: dict[str, CaseSnapshot]
) -> None:
    record = RecordActivities(offline_services.sessions).record
    case = cases["endorsing"]
    assert await ids(offline_services, CEO, escalated_to="me") == set()
    later = case.updated_at + timedelta(hours=1)
    for level, to in ((1, CEO), (2, "loner@dwp.gov.uk")):
        case.overdue, case.escalation_level, case.updated_at = True, level, later
        later += timedelta(hours=1)
        event = EventIn(
            f"e{level}",
            "escalated",
            "system",
            case.updated_at,
            case.stage,
            {"to": to, "level": level},
        )
        record(RecordRequest(case=case, events=[event]))
        record(RecordRequest(case=case, events=[event]))  # a retry changes nothing
    # Everyone it reached, while it lasts; not the manager whose endorsement it awaits.
    assert await ids(offline_services, CEO, escalated_to="me") == {case.id}
    assert await ids(offline_services, MANAGER, escalated_to="me") == set()
    # The manager endorses: the stage moves on and the escalation ends.
    case.stage, case.owner, case.overdue, case.escalation_level = ipa.SAC_REVIEW, None, False, 0
    case.updated_at = later
    record(RecordRequest(case=case, events=[]))
    assert await ids(offline_services, CEO, escalated_to="me") == set()


async def test_an_ipa_is_listed_for_the_requesters_chain_and_no_one_else(
    offline_services: Services, cases: dict[str, CaseSnapshot]
) -> None:
    every = {c.id for c in cases.values()}
    # The CEO manages the manager, who manages the requester.
    assert await ids(offline_services, CEO) == every
    assert await ids(offline_services, MANAGER) == every
    assert await ids(offline_services, EMPLOYEE) == every
    assert await ids(offline_services, OFFICER) == every  # SAC
    # A colleague with no role, and SIRT: nothing, not even by searching for its number.
    for outsider in ("loner@dwp.gov.uk", "sirt@dwp.gov.uk"):
        assert await ids(offline_services, outsider) == set()
        assert await ids(offline_services, outsider, q="IPA-Q-1") == set()
