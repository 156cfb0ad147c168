"""Who sees what of a confidential abuse investigation and disciplinary referral, next to
an ordinary IPA, through every read endpoint of the API and the action endpoint: one
table of people, the answers each endpoint owes them, compared cell by cell.

The parties in conflict (the investigation's alleged perpetrator, the referral's
subject) hold every role that would otherwise show them the whole case: their rows
prove that being a party outranks any role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app import service
from app.service.services import Services
from domain.views import PARTIAL_FIELDS
from tests.app.investigations import (
    INVESTIGATOR,
    PERPETRATOR_IN_SIRT,
    REPORTER,
    SECRET_WORD,
    SUBJECT_IN_HR,
    add_people,
    bearer,
    http_client,
    open_investigation,
    open_referral,
)
from workflows.common import Actor

WHOLE, OUTLINE, HIDDEN = "whole", "outline", "hidden"
KINDS = ("investigation", "referral", "ipa")

# The one table (API.md): person -> how they see (the investigation, the referral, the
# IPA), and whether they may comment where they see whole (auditors read, they never
# write, even those who administer too).
PEOPLE: dict[str, tuple[str, str, str, str, bool]] = {
    # name:        (email,               investigation, referral, ipa, comments)
    "sac": ("officer@dwp.gov.uk", HIDDEN, HIDDEN, WHOLE, True),
    "sac_lead": ("saclead@dwp.gov.uk", HIDDEN, HIDDEN, WHOLE, True),
    "sirt": ("sirt@dwp.gov.uk", WHOLE, HIDDEN, HIDDEN, True),
    "sirt_lead": ("sirtlead@dwp.gov.uk", WHOLE, HIDDEN, HIDDEN, True),
    "hr": ("hr@dwp.gov.uk", HIDDEN, WHOLE, HIDDEN, True),
    "hr_lead": ("hrlead@dwp.gov.uk", HIDDEN, WHOLE, HIDDEN, True),
    "auditor": ("auditor@dwp.gov.uk", WHOLE, WHOLE, WHOLE, False),
    "admin": ("admin@dwp.gov.uk", WHOLE, WHOLE, WHOLE, True),
    "reporter": (REPORTER.email, OUTLINE, HIDDEN, HIDDEN, True),
    "investigator": (INVESTIGATOR.email, WHOLE, HIDDEN, HIDDEN, True),
    "target": ("target@dwp.gov.uk", HIDDEN, HIDDEN, HIDDEN, True),
    "outsider": ("loner@dwp.gov.uk", HIDDEN, HIDDEN, HIDDEN, True),
    # The IPA's need to know: its requester's manager, and theirs (the chain).
    "manager": ("manager@dwp.gov.uk", HIDDEN, HIDDEN, WHOLE, True),
    "manager's manager": ("ceo@dwp.gov.uk", HIDDEN, HIDDEN, WHOLE, True),
    # Conflicted: sirt, sirt_lead, auditor and admin, yet the perpetrator gets 404 ...
    "perpetrator (sirt_lead, auditor, admin)": (
        PERPETRATOR_IN_SIRT.email,
        HIDDEN,
        WHOLE,
        WHOLE,
        False,
    ),
    # ... and hr, hr_lead, auditor and admin, yet the subject sees only the outline.
    "subject (hr_lead, auditor, admin)": (SUBJECT_IN_HR.email, WHOLE, OUTLINE, WHOLE, False),
}

ENDPOINTS = ("get", "list", "list q=word", "list q=id", "list stage=", "list team=")
ENDPOINTS += ("events", "comment")
WHOLE_FIELDS = {
    *("id", "type", "status", "stage", "outcome", "requester", "assignee", "team"),
    *("due_at", "overdue", "escalation_level", "opened_at", "updated_at", "closed_at"),
    *("details", "links", "actions"),
}
OUTLINE_FIELDS = {*PARTIAL_FIELDS, "actions"}


def expected(view: str, comments: bool) -> dict[str, Any]:
    """What each endpoint answers someone who sees a case so (API.md): the whole case
    everywhere; an outline that searches only by id, never matches a filter on what it
    hides (team, assignee, overdue), and reads no events; or nothing at all (404)."""
    if view == WHOLE:
        listed: dict[str, Any] = {e: WHOLE for e in ENDPOINTS if e.startswith("list")}
        return {"get": WHOLE, **listed, "events": 200, "comment": 200 if comments else 403}
    if view == OUTLINE:
        return {
            "get": OUTLINE,
            "list": OUTLINE,
            "list q=word": HIDDEN,
            "list q=id": OUTLINE,
            "list stage=": OUTLINE,
            "list team=": HIDDEN,
            "events": 403,
            "comment": 403,
        }
    listed = {e: HIDDEN for e in ENDPOINTS if e.startswith("list")}
    return {"get": 404, **listed, "events": 404, "comment": 404}


def shown_as(case: dict[str, Any]) -> str:
    if set(case) == WHOLE_FIELDS:
        return WHOLE
    assert set(case) == OUTLINE_FIELDS, f"neither whole nor outline: {sorted(case)}"
    # In these stages no one who sees an outline has anything to do (a subject's appeal
    # comes later): an outline offering an action would give the case away.
    assert case["actions"] == [], case
    return OUTLINE


IPA_DETAILS = {
    "account_kind": "individual_professional",
    "platform": "LinkedIn",
    "handle": "zanzibar-jobs",  # the same secret word: an IPA's details are no secret
    "justification": "Recruitment",
    "device": "dwp_managed",
    "contact_email": "jo@example.com",
}


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    add_people(services.sessions)
    async for client in http_client(services):
        yield client


async def observe(
    api: httpx.AsyncClient, case: dict[str, str], auth: dict[str, str]
) -> dict[str, Any]:
    """What one person gets from each endpoint for one case."""
    path = f"/api/cases/{case['id']}"
    got: dict[str, Any] = {}
    response = await api.get(path, headers=auth)
    got["get"] = shown_as(response.json()) if response.status_code == 200 else response.status_code
    searches = {
        "list": {},
        "list q=word": {"q": SECRET_WORD},
        "list q=id": {"q": case["id"]},
        "list stage=": {"stage": case["stage"], "status": "open"},
        "list team=": {"team": case["team"]},
    }
    for name, params in searches.items():
        listed = (
            await api.get("/api/cases", params={"type": case["type"], **params}, headers=auth)
        ).json()
        items = [c for c in listed["items"] if c["id"] == case["id"]]
        # One case of each type exists: the count gives away exactly what the items do.
        assert listed["total"] == len(listed["items"]) == len(items), (name, listed)
        got[name] = shown_as(items[0]) if items else HIDDEN
    got["events"] = (await api.get(f"{path}/events", headers=auth)).status_code
    comment = {"action": "comment", "text": "Noted"}
    got["comment"] = (await api.post(f"{path}/actions", json=comment, headers=auth)).status_code
    return got


async def test_who_sees_what_of_confidential_cases_and_of_an_ipa(
    api: httpx.AsyncClient, services: Services
) -> None:
    investigation_id = await open_investigation(
        services, perpetrator={"kind": "employee", "email": PERPETRATOR_IN_SIRT.email}
    )  # in investigation, assigned
    referral_id = await open_referral(services, SUBJECT_IN_HR)  # in hr_review
    auth = bearer(services.sessions, *(email for email, *_ in PEOPLE.values()))
    employee = bearer(services.sessions, "employee@dwp.gov.uk")["employee@dwp.gov.uk"]
    ipa = (
        await api.post(
            "/api/cases", json={"type": "ipa_approval", "details": IPA_DETAILS}, headers=employee
        )
    ).json()
    cases = {
        "investigation": {
            "id": investigation_id,
            "type": "abuse_investigation",
            "stage": "investigation",
            "team": "sirt",
        },
        "referral": {
            "id": referral_id,
            "type": "disciplinary_referral",
            "stage": "hr_review",
            "team": "hr",
        },
        "ipa": {"id": ipa["id"], "type": "ipa_approval", "stage": ipa["stage"], "team": "sac"},
    }
    # Cell by cell, so a failure names the person, the case and the endpoint.
    want: dict[tuple[str, str, str], Any] = {}
    got: dict[tuple[str, str, str], Any] = {}
    for name, (email, *views, comments) in PEOPLE.items():
        for kind, view in zip(KINDS, views, strict=True):
            answers = await observe(api, cases[kind], auth[email])
            for endpoint, answer in expected(str(view), bool(comments)).items():
                want[name, kind, endpoint] = answer
                got[name, kind, endpoint] = answers[endpoint]
    assert got == want


@pytest.mark.parametrize("kind", ["investigation", "referral"])
async def test_those_who_may_not_see_a_confidential_case_never_count_it(
    api: httpx.AsyncClient, services: Services, kind: str
) -> None:
    if kind == "investigation":
        case_id = await open_investigation(
            services, perpetrator={"kind": "employee", "email": PERPETRATOR_IN_SIRT.email}
        )
        case_type, stage, team = "abuse_investigation", "investigation", "sirt"
    else:
        case_id = await open_referral(services, SUBJECT_IN_HR)
        case_type, stage, team = "disciplinary_referral", "hr_review", "hr"
    column = KINDS.index(kind)
    hidden = [email for email, *views, _ in PEOPLE.values() if views[column] == HIDDEN]
    auth = bearer(services.sessions, *hidden)
    filters: list[dict[str, str]] = [
        {},
        {"type": case_type},
        {"status": "open"},
        {"stage": stage},
        {"team": team},
        {"assignee": INVESTIGATOR.email},
        {"overdue": "false"},
        {"q": SECRET_WORD},
        {"q": case_id},
        {"q": case_type},
    ]
    for email in hidden:
        for params in filters:
            listed = (await api.get("/api/cases", params=params, headers=auth[email])).json()
            assert listed == {"items": [], "total": 0}, (email, params)


async def test_the_reporter_follows_the_outline_to_the_outcome(
    api: httpx.AsyncClient, services: Services
) -> None:
    case_id = await open_investigation(services, assign=False)
    reporter = bearer(services.sessions, REPORTER.email)[REPORTER.email]
    lead = Actor("sirtlead@dwp.gov.uk", ["sirt", "sirt_lead"])
    await service.act(
        services,
        actor=lead,
        case_id=case_id,
        action="no_further_action",
        fields={"reason": "Out of scope"},
    )
    outline = (await api.get(f"/api/cases/{case_id}", headers=reporter)).json()
    assert outline == {
        "id": case_id,
        "type": "abuse_investigation",
        "status": "closed",
        "stage": "closed",
        "outcome": "no_further_action",
        "actions": [],
    }


async def test_a_perpetrator_named_during_the_investigation_loses_sight_of_it(
    api: httpx.AsyncClient, services: Services
) -> None:
    case_id = await open_investigation(services, perpetrator={"kind": "unknown"})
    perpetrator = bearer(services.sessions, PERPETRATOR_IN_SIRT.email)[PERPETRATOR_IN_SIRT.email]
    path = f"/api/cases/{case_id}"
    before = (await api.get(path, headers=perpetrator)).json()
    assert set(before) == WHOLE_FIELDS and "reassign" in before["actions"]
    named = {"action": "identify_perpetrator", "kind": "employee"}
    named["email"] = PERPETRATOR_IN_SIRT.email
    investigator = bearer(services.sessions, INVESTIGATOR.email)[INVESTIGATOR.email]
    response = await api.post(f"{path}/actions", json=named, headers=investigator)
    assert response.status_code == 200, response.text
    assert response.json()["details"]["perpetrator"] == {
        "kind": "employee",
        "email": PERPETRATOR_IN_SIRT.email,
    }
    assert (await api.get(path, headers=perpetrator)).status_code == 404
    assert (await api.get(f"{path}/events", headers=perpetrator)).status_code == 404
    listed = (await api.get("/api/cases", params={"q": case_id}, headers=perpetrator)).json()
    assert listed == {"items": [], "total": 0}
    comment = {"action": "comment", "text": "Let me see"}
    assert (await api.post(f"{path}/actions", json=comment, headers=perpetrator)).status_code == 404
