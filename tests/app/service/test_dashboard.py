"""The dashboard's figures for a known set of cases, as each kind of viewer may see them,
on SQLite and PostgreSQL. Cases and events are written by the read model's own writer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.service.dashboard import AGE_BUCKETS, Dashboard, dashboard, figures, may_see_dashboard
from app.service.errors import Forbidden, Invalid
from app.service.services import Services
from domain.records import append_events, upsert_case
from workflows.common import CLOSED, OPEN, Actor, CaseSnapshot, EventIn

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
THIS_WEEK, LAST_WEEK, TWO_WEEKS_AGO = date(2026, 11, 23), date(2026, 11, 16), date(2026, 11, 9)

AUDITOR = Actor("ava@dwp.gov.uk", ["auditor"])
SAC_LEAD = Actor("lee@dwp.gov.uk", ["sac", "sac_lead"])  # reported the investigation
SIRT_LEAD = Actor("robin@dwp.gov.uk", ["sirt", "sirt_lead"])
HR_LEAD = Actor("kim@dwp.gov.uk", ["hr", "hr_lead"])
EMPLOYEE = Actor("alex@dwp.gov.uk", [])

TEAM = {"ipa_approval": "sac", "policy_exception": "sac", "abuse_investigation": "sirt"}
TEAM["disciplinary_referral"] = "hr"
CONFIDENTIAL = {"abuse_investigation", "disciplinary_referral"}


def ago(**kw: float) -> datetime:
    return NOW - timedelta(**kw)


def event(n: int, kind: str, stage: str, at: datetime, **data: Any) -> EventIn:
    return EventIn(
        key=f"e{n}", kind=kind, actor="someone@dwp.gov.uk", at=at, stage=stage, data=data
    )


def write(
    session: Session,
    case_id: str,
    case_type: str,
    stage: str,
    opened: datetime,
    events: list[EventIn],
    *,
    requester: str = "alex@dwp.gov.uk",
    overdue_level: int | None = None,
    parties: dict[str, str] | None = None,
) -> None:
    closed = stage == "closed"
    upsert_case(
        session,
        CaseSnapshot(
            id=case_id,
            type=case_type,
            status=CLOSED if closed else OPEN,
            stage=stage,
            requester=requester,
            opened_at=opened,
            updated_at=NOW,
            closed_at=NOW if closed else None,
            team=TEAM[case_type],
            due_at=ago(days=1) if overdue_level is not None else None,
            overdue=overdue_level is not None,
            escalation_level=overdue_level or 0,
            parties={"requester": requester, **(parties or {})},
            confidential=case_type in CONFIDENTIAL,
        ),
    )
    append_events(
        session, case_id, [event(0, "opened", events[0].stage or "", opened), *events[1:]]
    )


@pytest.fixture
def cases(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    with sessions.begin() as s:
        write(
            s,
            "IPA-1",
            "ipa_approval",
            "manager_endorsement",
            ago(days=2),
            [event(0, "opened", "manager_endorsement", ago(days=2))],
        )
        # Endorsed late (escalated first), then overdue twice over in SAC review.
        write(
            s,
            "IPA-2",
            "ipa_approval",
            "sac_review",
            ago(days=10),
            [
                event(0, "opened", "manager_endorsement", ago(days=10)),
                event(1, "escalated", "manager_endorsement", ago(days=9), level=1),
                event(2, "endorse", "manager_endorsement", ago(days=8), to="sac_review"),
                event(3, "escalated", "sac_review", ago(days=3), level=1),
                event(4, "escalated", "sac_review", ago(days=2), level=2),
            ],
            overdue_level=2,
        )
        # On time throughout; the requester's answer is not measured.
        write(
            s,
            "IPA-3",
            "ipa_approval",
            "sac_review",
            ago(days=6),
            [
                event(0, "opened", "manager_endorsement", ago(days=6)),
                event(1, "endorse", "manager_endorsement", ago(days=6), to="sac_review"),
                event(2, "request_info", "sac_review", ago(days=5), to="awaiting_info"),
                event(3, "provide_info", "awaiting_info", ago(days=4), to="sac_review"),
                event(4, "comment", "sac_review", ago(days=4), text="thanks"),
            ],
        )
        # Overdue with no one left to escalate to.
        write(
            s,
            "PEX-1",
            "policy_exception",
            "triage",
            ago(days=40),
            [
                event(0, "opened", "triage", ago(days=40)),
                event(1, "escalation_chain_ended", "triage", ago(days=30), level=0),
            ],
            overdue_level=0,
        )
        write(
            s,
            "PEX-2",
            "policy_exception",
            "closed",
            ago(days=5),
            [
                event(0, "opened", "triage", ago(days=5)),
                event(1, "accept", "triage", ago(days=4), to="risk_assessment"),
                event(2, "submit_assessment", "risk_assessment", ago(days=1), to="decision"),
                event(3, "reject", "decision", ago(hours=1), to="closed"),
                event(4, "closed", "closed", ago(hours=1), outcome="rejected"),
            ],
        )
        # Reported by the SAC lead, who sees it only in outline; triage was late.
        write(
            s,
            "ABU-1",
            "abuse_investigation",
            "investigation",
            ago(days=100),
            [
                event(0, "opened", "triage", ago(days=100)),
                event(1, "escalated", "triage", ago(days=50), level=1),
                event(2, "assign", "triage", ago(days=12), to="investigation"),
                event(3, "escalated", "investigation", ago(days=2), level=1),
            ],
            requester=SAC_LEAD.email,
            overdue_level=1,
        )
        write(
            s,
            "DIS-1",
            "disciplinary_referral",
            "hr_review",
            ago(days=15),
            [event(0, "opened", "hr_review", ago(days=15))],
            parties={"subject": EMPLOYEE.email},
        )
    return sessions


def board(sessions: sessionmaker[Session], actor: Actor, team: str | None = None) -> Dashboard:
    with sessions.begin() as s:
        return figures(s, actor=actor, team=team, weeks=12, now=NOW)


def stages(b: Dashboard) -> dict[tuple[str, str], int]:
    return {(c.type, c.stage): c.count for c in b.open_by_stage}


def weeks(b: Dashboard) -> dict[date, tuple[int, int]]:
    return {w.week_of: (w.finished, w.on_time) for w in b.compliance if w.finished}


def test_an_auditor_counts_every_case(cases: sessionmaker[Session]) -> None:
    b = board(cases, AUDITOR)
    assert stages(b) == {
        ("ipa_approval", "manager_endorsement"): 1,
        ("ipa_approval", "sac_review"): 2,
        ("policy_exception", "triage"): 1,
        ("abuse_investigation", "investigation"): 1,
        ("disciplinary_referral", "hr_review"): 1,
    }
    # In the order of the case types' tables, stage by stage.
    assert [c.type for c in b.open_by_stage][:2] == ["ipa_approval", "ipa_approval"]
    assert b.open_total == 6
    assert b.overdue_by_level == [(0, 1), (1, 1), (2, 1)]
    assert [c.id for c in b.overdue] == ["ABU-1", "IPA-2", "PEX-1"]  # all due at once: by id
    assert dict(b.ageing) == {
        "Under 1 week": 2,
        "1 to 2 weeks": 1,
        "2 to 4 weeks": 1,
        "1 to 3 months": 1,
        "Over 3 months": 1,
    }
    assert [label for label, _ in b.ageing] == [label for label, _ in AGE_BUCKETS]
    # Last week: IPA-2's late endorsement, IPA-3's endorsement and question, PEX-2's
    # acceptance. This week: PEX-2's assessment and decision. The answer is not counted.
    assert weeks(b) == {TWO_WEEKS_AGO: (1, 0), LAST_WEEK: (4, 3), THIS_WEEK: (2, 2)}
    assert len(b.compliance) == 12 and b.compliance[-1].week_of == THIS_WEEK
    assert b.compliance[-1].percent == 100 and b.compliance[0].percent is None


def test_a_team_lead_counts_no_confidential_case_of_another_team(
    cases: sessionmaker[Session],
) -> None:
    b = board(cases, SAC_LEAD)
    # Not the investigation they reported (an outline shows no age, nor lateness),
    # nor the referral.
    assert {t for t, _ in stages(b)} == {"ipa_approval", "policy_exception"}
    assert b.open_total == 4
    assert b.overdue_by_level == [(0, 1), (2, 1)]
    assert {c.id for c in b.overdue} == {"IPA-2", "PEX-1"}
    assert sum(n for _, n in b.ageing) == 4
    assert weeks(b) == {LAST_WEEK: (4, 3), THIS_WEEK: (2, 2)}


def test_each_lead_counts_their_own_teams_confidential_cases(
    cases: sessionmaker[Session],
) -> None:
    sirt = board(cases, SIRT_LEAD)
    assert ("abuse_investigation", "investigation") in stages(sirt)
    assert ("disciplinary_referral", "hr_review") not in stages(sirt)
    assert weeks(sirt)[TWO_WEEKS_AGO] == (1, 0)
    hr = board(cases, HR_LEAD)
    assert ("disciplinary_referral", "hr_review") in stages(hr)
    assert ("abuse_investigation", "investigation") not in stages(hr)


def test_one_teams_figures(cases: sessionmaker[Session]) -> None:
    sirt = board(cases, AUDITOR, team="sirt")
    assert stages(sirt) == {("abuse_investigation", "investigation"): 1}
    assert sirt.overdue_by_level == [(1, 1)]
    assert weeks(sirt) == {TWO_WEEKS_AGO: (1, 0)}
    sac = board(cases, AUDITOR, team="sac")
    assert sac.open_total == 4
    # A lead of the SAC who asks for SIRT's figures gets none of them.
    assert board(cases, SAC_LEAD, team="sirt").open_total == 0


def _services(sessions: sessionmaker[Session]) -> Services:
    # Only the database is used: the dashboard reads nothing else.
    return Services(cast(Any, None), sessions, cast(Any, None), cast(Any, None))


async def test_only_leads_auditors_and_admins_may_see_it(cases: sessionmaker[Session]) -> None:
    svc = _services(cases)
    for actor in (EMPLOYEE, Actor("sam@dwp.gov.uk", ["sac"]), Actor("jo@dwp.gov.uk", ["sirt"])):
        assert not may_see_dashboard(actor)
        with pytest.raises(Forbidden):
            await dashboard(svc, actor=actor, now=NOW)
    admin = await dashboard(svc, actor=Actor("ali@dwp.gov.uk", ["admin"]), now=NOW)
    assert admin.open_total == 6
    with pytest.raises(Invalid, match="team"):
        await dashboard(svc, actor=AUDITOR, team="nope")
    with pytest.raises(Invalid, match="weeks"):
        await dashboard(svc, actor=AUDITOR, weeks=0)
