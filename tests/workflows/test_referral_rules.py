"""Who may take which disciplinary referral action in which stage, who sees how much of
it, and who may open one: API.md's table, written out by hand and checked against the
one rules table the workflow, the service and the pages read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.views import view_of
from workflows import referral_types as dis
from workflows.common import Actor, CaseSnapshot
from workflows.rules import FORBIDDEN, allowed_actions

PEOPLE = {
    "hr": Actor("hr@dwp.gov.uk", ["hr"]),
    "hr_lead": Actor("hrlead@dwp.gov.uk", ["hr", "hr_lead"]),
    # In HR (API.md: a caseworker holds the role the stage needs).
    "caseworker": Actor("caseworker@dwp.gov.uk", ["hr"]),
    "subject": Actor("subject@dwp.gov.uk", []),
    "raiser": Actor("sirtlead@dwp.gov.uk", ["sirt", "sirt_lead"]),  # the investigation's lead
    "auditor": Actor("auditor@dwp.gov.uk", ["auditor"]),
    "admin": Actor("admin@dwp.gov.uk", ["admin"]),
    "sac": Actor("officer@dwp.gov.uk", ["sac", "sac_lead"]),
    "colleague": Actor("colleague@dwp.gov.uk", []),
}

# API.md, `disciplinary_referral`: stage -> person -> the actions they may take there.
# Everyone who sees it whole may `comment` (auditors, who change nothing, excepted);
# `reassign` is the HR lead's and the admin's. Anyone not listed may do nothing.
EXPECTED: dict[str, dict[str, set[str]]] = {
    dis.HR_REVIEW: {
        "caseworker": {"accept", "no_case_to_answer", "comment"},
        "hr": {"accept", "no_case_to_answer", "comment"},
        "hr_lead": {"accept", "no_case_to_answer", "comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
    dis.HEARING: {
        "hr": {"comment"},
        "hr_lead": {"comment", "reassign"},
        "caseworker": {"schedule_hearing", "record_outcome", "comment"},
        "admin": {"comment", "reassign"},
    },
    dis.APPEAL_WINDOW: {
        "hr": {"comment"},
        "hr_lead": {"comment", "reassign"},
        "caseworker": {"comment"},
        "subject": {"appeal"},
        "admin": {"comment", "reassign"},
    },
    dis.APPEAL: {
        "hr": {"comment"},
        "hr_lead": {"decide_appeal", "comment", "reassign"},
        "caseworker": {"comment"},
        "admin": {"comment", "reassign"},
    },
}

# API.md: seen whole by hr, hr_lead, the caseworker, auditor, admin; the subject sees
# the outline; anyone else nothing (404).
SEES: dict[str, str | None] = {
    "hr": "whole",
    "hr_lead": "whole",
    "caseworker": "whole",
    "auditor": "whole",
    "admin": "whole",
    "subject": "partial",
    "raiser": None,
    "sac": None,
    "colleague": None,
}


def case_in(stage: str, status: str = "open", **parties: str) -> CaseSnapshot:
    now = datetime.now(UTC)
    named = {"requester": PEOPLE["hr"].email, "subject": PEOPLE["subject"].email}
    if stage != dis.HR_REVIEW:
        named["caseworker"] = PEOPLE["caseworker"].email
    return CaseSnapshot(
        id="DIS-2026-000001",
        type=dis.TYPE,
        status=status,
        stage=stage,
        requester=PEOPLE["hr"].email,
        opened_at=now,
        updated_at=now,
        team="hr",
        details={"subject": PEOPLE["subject"].email, "breach": "x"},
        parties={**named, **parties},
        confidential=True,
    )


@pytest.mark.parametrize("stage", dis.STAGES)
@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_who_may_take_which_action(stage: str, person: str) -> None:
    expected = EXPECTED[stage].get(person, set())
    assert set(allowed_actions(dis.RULES, case_in(stage), PEOPLE[person])) == expected


def test_every_action_of_the_table_is_exercised() -> None:
    covered = set().union(*(a for stage in EXPECTED.values() for a in stage.values()))
    assert covered == set(dis.RULES.by_name)


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_nobody_acts_on_a_closed_referral(person: str) -> None:
    closed = case_in("closed", status="closed")
    assert allowed_actions(dis.RULES, closed, PEOPLE[person]) == []


@pytest.mark.parametrize("stage", dis.STAGES)
@pytest.mark.parametrize("person", sorted(SEES))
def test_who_sees_how_much(stage: str, person: str) -> None:
    assert dis.RULES.confidential
    expected = SEES[person]
    assert view_of(dis.RULES, case_in(stage), PEOPLE[person]) == expected


@pytest.mark.parametrize("stage", dis.STAGES)
def test_a_subject_in_hr_may_do_nothing_on_their_own_referral_but_appeal(stage: str) -> None:
    lead = PEOPLE["hr_lead"]
    case = case_in(stage, subject=lead.email)
    expected = {"appeal"} if stage == dis.APPEAL_WINDOW else set()
    assert set(allowed_actions(dis.RULES, case, lead)) == expected


@pytest.mark.parametrize("stage", dis.STAGES)
@pytest.mark.parametrize("roles", [["hr"], ["hr", "hr_lead"], ["auditor"], ["admin"]])
def test_a_subject_sees_only_the_outline_whatever_their_roles(stage: str, roles: list[str]) -> None:
    subject = Actor(PEOPLE["subject"].email, roles)
    assert view_of(dis.RULES, case_in(stage), subject) == "partial"


def test_the_caseworker_may_not_decide_the_appeal_of_their_own_hearing() -> None:
    lead = PEOPLE["hr_lead"]
    case = case_in(dis.APPEAL, caseworker=lead.email)
    assert set(allowed_actions(dis.RULES, case, lead)) == {"comment", "reassign"}


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_only_hr_opens_a_referral(person: str) -> None:
    refusal = dis.opener_refusal(PEOPLE[person], {"subject": "someone@dwp.gov.uk"})
    if person in ("hr", "hr_lead", "caseworker"):
        assert refusal is None
    else:
        assert refusal is not None and refusal.code == FORBIDDEN


def test_nobody_opens_a_referral_about_themselves() -> None:
    refusal = dis.opener_refusal(PEOPLE["hr"], {"subject": " HR@dwp.gov.uk "})
    assert refusal is not None and refusal.code == FORBIDDEN
