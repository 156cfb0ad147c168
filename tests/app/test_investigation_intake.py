"""Reporting abuse through the API: what is refused at intake (422, naming the field),
and what the reporter gets back (the outline only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.service.services import Services
from domain.views import PARTIAL_FIELDS
from models import Case
from tests.app.investigations import DETAILS, REPORTER, add_people, bearer, http_client
from tests.today import london_date


@pytest.fixture
async def offline_api(offline_services: Services) -> AsyncIterator[httpx.AsyncClient]:
    add_people(offline_services.sessions)
    async for client in http_client(offline_services):
        yield client


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"perpetrator": {"kind": "employee"}},
            "details.perpetrator.email: required when the perpetrator is an employee (policy 6.2)",
        ),
        (
            {"perpetrator": {"kind": "employee", "email": "mallory"}},
            "details.perpetrator.email: must be an email address",
        ),
        ({"perpetrator": {"kind": "bot"}}, "details.perpetrator.kind: must be one of"),
        ({"content_urls": ["javascript:alert(1)"]}, "details.content_urls: must be an http(s)"),
        ({"category": "spam"}, "details.category: must be one of"),
    ],
)
async def test_a_refused_report_is_422_naming_the_field_and_starts_nothing(
    offline_api: httpx.AsyncClient,
    offline_services: Services,
    change: dict[str, Any],
    message: str,
) -> None:
    auth = bearer(offline_services.sessions, REPORTER.email)[REPORTER.email]
    body = {"type": "abuse_investigation", "details": {**DETAILS, **change}}
    response = await offline_api.post("/api/cases", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith(message)
    with offline_services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 0


async def test_the_reporter_gets_the_outline_back(services: Services) -> None:
    add_people(services.sessions)
    auth = bearer(services.sessions, REPORTER.email)[REPORTER.email]
    async for api in http_client(services):
        body = {"type": "abuse_investigation", "details": DETAILS}
        response = await api.post("/api/cases", json=body, headers=auth)
        assert response.status_code == 201, response.text
        case = response.json()
        assert set(case) == {*PARTIAL_FIELDS, "actions"}
        assert (case["type"], case["stage"], case["actions"]) == (
            "abuse_investigation",
            "triage",
            [],
        )
        assert case["id"].startswith("ABU-")
    with services.sessions() as session:
        row = session.get(Case, case["id"])
        assert row is not None and row.confidential
        assert row.parties["perpetrator"] == "perp@dwp.gov.uk"
        assert row.parties["requester"] == REPORTER.email


@pytest.mark.todays("summer_after_midnight", "last_working_day_of_year", "leap_day")
async def test_an_occurrence_is_judged_by_the_date_in_london(services: Services) -> None:
    """At 00:30 BST London's date is a day ahead of UTC's: abuse seen "today" in London
    is not in the future, and tomorrow is, whatever UTC says."""
    add_people(services.sessions)
    auth = bearer(services.sessions, REPORTER.email)[REPORTER.email]
    async for api in http_client(services):
        tomorrow = {**DETAILS, "occurred_on": london_date(1)}
        body = {"type": "abuse_investigation", "details": tomorrow}
        refused = await api.post("/api/cases", json=body, headers=auth)
        assert refused.status_code == 422, refused.text
        message = refused.json()["error"]["message"]
        assert message == "details.occurred_on: cannot be in the future"
        today = {**DETAILS, "occurred_on": london_date(0)}
        body = {"type": "abuse_investigation", "details": today}
        accepted = await api.post("/api/cases", json=body, headers=auth)
        assert accepted.status_code == 201, accepted.text
