"""Who may take which IPA action in which stage: API.md's table, written out by hand
and checked against the one rules table the workflow, the service and the pages read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.views import view_of
from workflows import ipa_types as ipa
from workflows.common import Actor, CaseSnapshot
from workflows.rules import allowed_actions

PEOPLE = {
    "requester": Actor("employee@dwp.gov.uk", []),
    "manager": Actor("manager@dwp.gov.uk", [], manages=["employee@dwp.gov.uk"]),
    # The manager's manager: in the requester's management chain, so sees it whole.
    "director": Actor(
        "director@dwp.gov.uk", [], manages=["manager@dwp.gov.uk", "employee@dwp.gov.uk"]
    ),
    "sac": Actor("officer@dwp.gov.uk", ["sac"]),
    "sac_lead": Actor("saclead@dwp.gov.uk", ["sac", "sac_lead"]),
    "admin": Actor("admin@dwp.gov.uk", ["admin"]),
    "auditor": Actor("auditor@dwp.gov.uk", ["auditor"]),
    "sirt": Actor("sirt@dwp.gov.uk", ["sirt", "sirt_lead"]),
    "colleague": Actor("colleague@dwp.gov.uk", []),
}

# Need to know (API.md): the requester, their management chain, SAC, SAC leads, auditors
# and admins see it whole; anyone else (a SIRT lead, a colleague) not at all.
VIEWS: dict[str, str | None] = {
    p: (None if p in ("sirt", "colleague") else "whole") for p in PEOPLE
}


def default_actions(person: str) -> set[str]:
    """What a person a stage's row does not name may do: comment, if they may see it
    whole and are not an auditor (who changes nothing)."""
    return set() if person == "auditor" or VIEWS[person] is None else {"comment"}


# API.md, `ipa_approval`: stage -> person -> the actions they may take there.
# Every person who may see the case may `comment`, but auditors, who change nothing.
EXPECTED: dict[str, dict[str, set[str]]] = {
    ipa.MANAGER_ENDORSEMENT: {
        "requester": {"withdraw", "comment"},
        "manager": {"endorse", "decline", "comment"},
        "sac": {"comment"},
        "sac_lead": {"comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
    ipa.SAC_REVIEW: {
        "requester": {"withdraw", "comment"},
        "manager": {"comment"},
        "sac": {"approve", "reject", "request_info", "comment"},
        "sac_lead": {"approve", "reject", "request_info", "comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
    ipa.AWAITING_INFO: {
        "requester": {"provide_info", "withdraw", "comment"},
        "manager": {"comment"},
        "sac": {"comment"},
        "sac_lead": {"comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
    ipa.AWAITING_EXCEPTION: {
        "requester": {"withdraw", "comment"},
        "manager": {"comment"},
        "sac": {"comment"},
        "sac_lead": {"comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
    ipa.ACTIVE: {
        "requester": {"attest", "retire", "comment"},
        "manager": {"comment"},
        "sac": {"revoke", "comment"},
        "sac_lead": {"revoke", "comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
}


def case_in(stage: str, status: str = "open") -> CaseSnapshot:
    now = datetime.now(UTC)
    return CaseSnapshot(
        id="IPA-2026-000001",
        type=ipa.TYPE,
        status=status,
        stage=stage,
        requester=PEOPLE["requester"].email,
        opened_at=now,
        updated_at=now,
        team="sac",
        parties={
            "requester": PEOPLE["requester"].email,
            "requester_manager": PEOPLE["manager"].email,
        },
    )


@pytest.mark.parametrize("stage", ipa.STAGES)
@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_who_may_take_which_action(stage: str, person: str) -> None:
    # Anyone else may see an IPA, so may comment on it; an auditor may not.
    expected = EXPECTED[stage].get(person, default_actions(person))
    assert set(allowed_actions(ipa.RULES, case_in(stage), PEOPLE[person])) == expected


def test_every_action_of_the_table_is_exercised() -> None:
    covered = set().union(*(a for stage in EXPECTED.values() for a in stage.values()))
    assert covered == set(ipa.RULES.by_name)


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_nobody_acts_on_a_closed_case(person: str) -> None:
    closed = case_in("closed", status="closed")
    assert allowed_actions(ipa.RULES, closed, PEOPLE[person]) == []


def test_an_auditor_acts_on_their_own_request() -> None:
    auditor = PEOPLE["auditor"]
    case = case_in(ipa.SAC_REVIEW)
    case.parties["requester"] = case.requester = auditor.email
    assert set(allowed_actions(ipa.RULES, case, auditor)) == {"withdraw", "comment"}


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_need_to_know_decides_who_sees_it(person: str) -> None:
    for stage in ipa.STAGES:
        assert view_of(ipa.RULES, case_in(stage), PEOPLE[person]) == VIEWS[person], stage


def test_the_chain_is_the_requesters_not_anyone_elses() -> None:
    """A manager of someone else sees nothing; whoever manages the requester, however
    far up, sees it whole."""
    case = case_in(ipa.STAGES[0])
    assert view_of(ipa.RULES, case, Actor("boss@dwp.gov.uk", [], manages=["x@dwp.gov.uk"])) is None
    top = Actor("ceo@dwp.gov.uk", [], manages=["a@dwp.gov.uk", case.requester])
    assert view_of(ipa.RULES, case, top) == "whole"
