"""Who may take which policy exception action in which stage: API.md's table, written out
by hand and checked against the one rules table the workflow, the service and the pages
read; and the limits on extending an exception (policy 5.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.views import view_of
from workflows import exception_types as pex
from workflows.common import Actor, CaseSnapshot
from workflows.rules import Refusal, allowed_actions, check_action, clean_fields

PEOPLE = {
    "requester": Actor("employee@dwp.gov.uk", []),
    "manager": Actor("manager@dwp.gov.uk", [], manages=["employee@dwp.gov.uk"]),
    # The manager's manager: in the requester's management chain, so sees it whole.
    "director": Actor(
        "director@dwp.gov.uk", [], manages=["manager@dwp.gov.uk", "employee@dwp.gov.uk"]
    ),
    "sac": Actor("officer@dwp.gov.uk", ["sac"]),
    "assessor": Actor("officer2@dwp.gov.uk", ["sac"]),
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


# API.md, `policy_exception`: stage -> person -> the actions they may take there.
# Every person who may see the case may `comment`, but auditors, who change nothing.
# The assessor is a party from `decision` on (they submitted the assessment).
EXPECTED: dict[str, dict[str, set[str]]] = {
    pex.TRIAGE: {
        "requester": {"withdraw", "comment"},
        "sac": {"accept", "reject", "request_info", "comment"},
        "assessor": {"accept", "reject", "request_info", "comment"},
        "sac_lead": {"accept", "reject", "request_info", "comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
    pex.AWAITING_INFO: {
        "requester": {"provide_info", "withdraw", "comment"},
        "sac_lead": {"comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
    pex.RISK_ASSESSMENT: {
        "requester": {"withdraw", "comment"},
        "sac": {"submit_assessment", "comment"},
        "assessor": {"submit_assessment", "comment"},
        "sac_lead": {"submit_assessment", "comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
    pex.DECISION: {
        "requester": {"withdraw", "comment"},
        "sac": {"comment"},
        "assessor": {"comment"},
        "sac_lead": {"approve", "reject", "comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
    pex.ACTIVE: {
        "requester": {"comment"},
        "sac": {"revoke", "comment"},
        "assessor": {"revoke", "comment"},
        "sac_lead": {"extend", "revoke", "comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
}


def case_in(stage: str, status: str = "open") -> CaseSnapshot:
    now = datetime.now(UTC)
    parties = {"requester": PEOPLE["requester"].email}
    if stage in (pex.DECISION, pex.ACTIVE):
        parties["assessor"] = PEOPLE["assessor"].email
    return CaseSnapshot(
        id="PEX-2026-000001",
        type=pex.TYPE,
        status=status,
        stage=stage,
        requester=PEOPLE["requester"].email,
        opened_at=now,
        updated_at=now,
        team="sac",
        parties=parties,
    )


@pytest.mark.parametrize("stage", pex.STAGES)
@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_who_may_take_which_action(stage: str, person: str) -> None:
    # Anyone else may see an exception, so may comment on it; an auditor may not.
    expected = EXPECTED[stage].get(person, default_actions(person))
    assert set(allowed_actions(pex.RULES, case_in(stage), PEOPLE[person])) == expected


def test_every_action_of_the_table_is_exercised() -> None:
    covered = set().union(*(a for stage in EXPECTED.values() for a in stage.values()))
    assert covered == {rule.name for rule in pex.RULES.actions}


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_nobody_acts_on_a_closed_case(person: str) -> None:
    closed = case_in("closed", status="closed")
    assert allowed_actions(pex.RULES, closed, PEOPLE[person]) == []


def test_reject_is_a_sac_officers_at_triage_and_a_sac_leads_at_decision() -> None:
    officer, lead = PEOPLE["sac"], PEOPLE["sac_lead"]
    assert check_action(pex.RULES, case_in(pex.TRIAGE), officer, "reject").who == ("role:sac",)
    with pytest.raises(Refusal) as refused:
        check_action(pex.RULES, case_in(pex.DECISION), officer, "reject")
    assert refused.value.code == "forbidden"
    rule = check_action(pex.RULES, case_in(pex.DECISION), lead, "reject")
    assert (rule.who, rule.not_party) == (("role:sac_lead",), ("assessor", "requester"))
    # Listed once, wherever it is allowed.
    assert allowed_actions(pex.RULES, case_in(pex.TRIAGE), lead).count("reject") == 1


@pytest.mark.parametrize("party", ["assessor", "requester"])
@pytest.mark.parametrize("action", ["approve", "reject"])
def test_a_sac_lead_who_assessed_or_asked_does_not_decide(party: str, action: str) -> None:
    lead = PEOPLE["sac_lead"]
    case = case_in(pex.DECISION)
    case.parties[party] = lead.email
    with pytest.raises(Refusal) as refused:
        check_action(pex.RULES, case, lead, action)
    assert refused.value.code == "forbidden"
    assert f"the {party} of {case.id} may not also {action} it (four eyes)" in refused.value.message
    assert set(allowed_actions(pex.RULES, case, lead)) == {"comment", "reassign"} | (
        {"withdraw"} if party == "requester" else set()
    )


APPROVED = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("extensions", "valid_days", "days", "refused"),
    [
        (0, 30, 335, None),  # exactly 365 days from approval
        (1, 300, 65, None),
        (0, 30, 336, "days: at most 335 more days"),
        (1, 365, 1, "days: at most 0 more days"),
        (2, 30, 1, "action: an exception is extended at most 2 times"),
    ],
)
def test_extension_limits(extensions: int, valid_days: int, days: int, refused: str | None) -> None:
    refusal = pex.extension_refusal(
        extensions=extensions,
        approved_at=APPROVED,
        expires_at=APPROVED + timedelta(days=valid_days),
        days=days,
    )
    if refused is None:
        assert refusal is None
        return
    assert refusal is not None
    assert refusal.message.startswith(refused) and refusal.message.endswith("(policy 5.2)")
    assert (refusal.code, refusal.field) == (
        ("conflict", "action") if extensions == 2 else ("invalid", "days")
    )
    if refusal.field == "days":
        assert "until 2027-01-05" in refusal.message


DETAILS = {
    "policy_section": "5.1",
    "requirement": "An IPA used from a personal phone",
    "justification": "Job fairs",
    "risk": "Credentials on an unmanaged device",
    "compensating_controls": "Multi-factor authentication",
    "duration_days": 90,
}


def test_details_as_api_md_names_them() -> None:
    cleaned = clean_fields(pex.RULES.details, {**DETAILS, "related_case": "IPA-2026-000001"})
    assert cleaned == {**DETAILS, "related_case": "IPA-2026-000001"}
    assert "related_case" not in clean_fields(pex.RULES.details, DETAILS)  # optional


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"duration_days": 0}, "duration_days: must be between 1 and 365 (policy 5.2)"),
        ({"duration_days": 366}, "duration_days: must be between 1 and 365 (policy 5.2)"),
        ({"duration_days": "30"}, "duration_days: must be a whole number (policy 5.2)"),
        ({"risk": ""}, "risk: required"),
        ({"compensating_controls": None}, "compensating_controls: required"),
    ],
)
def test_details_refused_name_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(Refusal) as refused:
        clean_fields(pex.RULES.details, {**DETAILS, **change})
    assert (refused.value.code, refused.value.message) == ("invalid", message)


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_need_to_know_decides_who_sees_it(person: str) -> None:
    for stage in pex.STAGES:
        assert view_of(pex.RULES, case_in(stage), PEOPLE[person]) == VIEWS[person], stage


def test_the_chain_is_the_requesters_not_anyone_elses() -> None:
    """A manager of someone else sees nothing; whoever manages the requester, however
    far up, sees it whole."""
    case = case_in(pex.STAGES[0])
    assert view_of(pex.RULES, case, Actor("boss@dwp.gov.uk", [], manages=["x@dwp.gov.uk"])) is None
    top = Actor("ceo@dwp.gov.uk", [], manages=["a@dwp.gov.uk", case.requester])
    assert view_of(pex.RULES, case, top) == "whole"
