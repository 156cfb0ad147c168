"""Who may take which abuse-investigation action in which stage, and who sees what:
API.md's table written out by hand and checked against the one rules table the
workflow, the service and the pages read. Also the intake rules on the details."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from domain.views import view_of
from workflows import investigation_types as abu
from workflows.common import Actor, CaseSnapshot
from workflows.rules import Refusal, allowed_actions, clean_fields, parties_from_details

PEOPLE = {
    "reporter": Actor("reporter@dwp.gov.uk", []),
    "perpetrator": Actor("perp@dwp.gov.uk", []),
    "target": Actor("target@dwp.gov.uk", []),
    # A SIRT investigator (API.md: an investigator holds the role the stage needs).
    "investigator": Actor("investigator@dwp.gov.uk", ["sirt"]),
    "sirt": Actor("sirt@dwp.gov.uk", ["sirt"]),
    "sirt_lead": Actor("sirtlead@dwp.gov.uk", ["sirt", "sirt_lead"]),
    "admin": Actor("admin@dwp.gov.uk", ["admin"]),
    "auditor": Actor("auditor@dwp.gov.uk", ["auditor"]),
    "sac": Actor("officer@dwp.gov.uk", ["sac", "sac_lead"]),
    "hr": Actor("hr@dwp.gov.uk", ["hr", "hr_lead"]),
    "outsider": Actor("colleague@dwp.gov.uk", []),
}

# API.md, `abuse_investigation`: stage -> person -> the actions they may take there.
# `comment` is for those who see the whole case (auditors read, they do not comment);
# `reassign` for the SIRT lead and admins; `close`/`reopen` never for the investigator.
EXPECTED: dict[str, dict[str, set[str]]] = {
    abu.TRIAGE: {
        "investigator": {"assign", "no_further_action", "comment"},
        "sirt": {"assign", "no_further_action", "comment"},
        "sirt_lead": {"assign", "no_further_action", "comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
    abu.INVESTIGATION: {
        "investigator": {"add_evidence", "identify_perpetrator", "extend", "conclude", "comment"},
        "sirt": {"comment"},
        "sirt_lead": {"comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
    abu.REVIEW: {
        "investigator": {"comment"},
        "sirt": {"comment"},
        "sirt_lead": {"close", "reopen", "comment", "reassign"},
        "admin": {"comment", "reassign"},
    },
}

# Who sees an investigation, whatever its stage (API.md): whole, outline, or not at all.
VIEWS: dict[str, str | None] = {
    "reporter": "partial",
    "perpetrator": None,
    "target": None,
    "investigator": "whole",
    "sirt": "whole",
    "sirt_lead": "whole",
    "admin": "whole",
    "auditor": "whole",
    "sac": None,
    "hr": None,
    "outsider": None,
}

DETAILS: dict[str, Any] = {
    "category": "cyberbullying",
    "platform": "X",
    "description": "Repeated abusive replies to a colleague's posts",
    "occurred_on": "2026-01-05",
    "source": "staff_report",
    "content_urls": ["https://x.example/post/1", "https://x.example/post/2"],
    "targets": ["Target@DWP.gov.uk"],
    "perpetrator": {"kind": "employee", "email": "Perp@DWP.gov.uk"},
}


def case_in(stage: str, status: str = "open") -> CaseSnapshot:
    now = datetime.now(UTC)
    parties = {
        "requester": PEOPLE["reporter"].email,
        "perpetrator": PEOPLE["perpetrator"].email,
    }
    if stage != abu.TRIAGE:
        parties["investigator"] = parties["assignee"] = PEOPLE["investigator"].email
    return CaseSnapshot(
        id="ABU-2026-000001",
        type=abu.TYPE,
        status=status,
        stage=stage,
        requester=PEOPLE["reporter"].email,
        opened_at=now,
        updated_at=now,
        team="sirt",
        details={**DETAILS, "targets": [PEOPLE["target"].email]},
        parties=parties,
        confidential=True,
    )


@pytest.mark.parametrize("stage", abu.STAGES)
@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_who_may_take_which_action(stage: str, person: str) -> None:
    expected = EXPECTED[stage].get(person, set())
    assert set(allowed_actions(abu.RULES, case_in(stage), PEOPLE[person])) == expected


def test_every_action_of_the_table_is_exercised() -> None:
    covered = set().union(*(a for stage in EXPECTED.values() for a in stage.values()))
    assert covered == set(abu.RULES.by_name)


@pytest.mark.parametrize("stage", abu.STAGES)
@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_who_sees_what(stage: str, person: str) -> None:
    expected = VIEWS[person]
    assert view_of(abu.RULES, case_in(stage), PEOPLE[person]) == expected


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_nobody_acts_on_a_closed_investigation(person: str) -> None:
    closed = case_in("closed", status="closed")
    assert allowed_actions(abu.RULES, closed, PEOPLE[person]) == []


def test_a_lead_who_investigated_or_concluded_may_not_close_or_reopen() -> None:
    lead = PEOPLE["sirt_lead"]
    case = case_in(abu.REVIEW)
    case.parties["investigator"] = lead.email
    assert set(allowed_actions(abu.RULES, case, lead)) == {"comment", "reassign"}
    # Handed on after concluding: whoever concluded still may not close their own finding.
    case = case_in(abu.REVIEW)
    case.parties["concluded_by"] = lead.email
    assert set(allowed_actions(abu.RULES, case, lead)) == {"comment", "reassign"}


@pytest.mark.parametrize("stage", abu.STAGES)
@pytest.mark.parametrize("roles", [["sirt"], ["sirt", "sirt_lead"], ["auditor"], ["admin"]])
def test_a_perpetrator_sees_and_does_nothing_whatever_their_roles(
    stage: str, roles: list[str]
) -> None:
    perpetrator = Actor(PEOPLE["perpetrator"].email, roles)
    assert view_of(abu.RULES, case_in(stage), perpetrator) is None
    assert allowed_actions(abu.RULES, case_in(stage), perpetrator) == []
    # Reporting their own abuse, they follow its outline, still doing nothing.
    reported = case_in(stage)
    reported.requester = reported.parties["requester"] = perpetrator.email
    assert view_of(abu.RULES, reported, perpetrator) == "partial"
    assert allowed_actions(abu.RULES, reported, perpetrator) == []


def test_a_case_that_names_no_perpetrator_is_hidden_from_nobody() -> None:
    case = case_in(abu.REVIEW)
    del case.parties["perpetrator"]
    assert view_of(abu.RULES, case, PEOPLE["sirt_lead"]) == "whole"
    assert "close" in allowed_actions(abu.RULES, case, PEOPLE["sirt_lead"])


def test_the_perpetrator_named_by_email_is_a_party() -> None:
    cleaned = clean_fields(abu.RULES.details, DETAILS)
    assert parties_from_details(abu.RULES, cleaned) == {"perpetrator": "perp@dwp.gov.uk"}
    assert cleaned["targets"] == ["target@dwp.gov.uk"]
    assert abu.intake_refusal(cleaned, date(2026, 1, 6)) is None


def refusal(details: dict[str, Any], today: date = date(2026, 1, 6)) -> Refusal:
    try:
        found = abu.intake_refusal(clean_fields(abu.RULES.details, details), today)
    except Refusal as r:
        return r
    assert found is not None, "not refused"
    return found


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"perpetrator": {"kind": "employee"}}, "perpetrator.email", "required when"),
        (
            {"perpetrator": {"kind": "employee", "email": "not an email"}},
            "perpetrator.email",
            "must be an email address",
        ),
        ({"perpetrator": {"kind": "ghost"}}, "perpetrator.kind", "must be one of"),
        ({"perpetrator": {"email": "a@b.org"}}, "perpetrator.kind", "required"),
        ({"perpetrator": {"kind": "unknown", "name": "x"}}, "perpetrator.name", "unknown field"),
        ({"perpetrator": "Mallory"}, "perpetrator", "must be an object"),
        ({"content_urls": "https://x.example/1"}, "content_urls", "must be a list"),
        ({"content_urls": ["ftp://x.example/1"]}, "content_urls", "http(s) URL"),
        ({"content_urls": []}, "content_urls", "must be a list"),
        ({"targets": ["nobody"]}, "targets", "must be an email address"),
        ({"category": "spam"}, "category", "must be one of"),
        ({"source": "rumour"}, "source", "must be one of"),
        ({"occurred_on": "2026-13-01"}, "occurred_on", "must be a date"),
        ({"occurred_on": "2026-01-08"}, "occurred_on", "cannot be in the future"),
    ],
)
def test_intake_refusals_name_the_field(change: dict[str, Any], field: str, message: str) -> None:
    found = refusal({**DETAILS, **change})
    assert (found.code, found.field) == ("invalid", field)
    assert found.message.startswith(f"{field}: ") and message in found.message


@pytest.mark.parametrize("kind", ["external", "unknown"])
def test_a_perpetrator_who_is_not_an_employee_needs_no_email(kind: str) -> None:
    details = {**DETAILS, "perpetrator": {"kind": kind, "description": "@troll on X"}}
    cleaned = clean_fields(abu.RULES.details, details)
    assert abu.intake_refusal(cleaned, date(2026, 1, 6)) is None
    assert parties_from_details(abu.RULES, cleaned) == {}


def test_a_recording_is_referred_under_4_2() -> None:
    assert abu.policy_sections("unauthorised_recording") == "4.2, 6.2"
    assert abu.policy_sections("trolling") == "4.1, 6.2"
