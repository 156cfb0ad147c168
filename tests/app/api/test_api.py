"""The HTTP API: the contract's statuses and error shape, over the real service layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.api.limits import MAX_BODY
from app.platform.settings import Settings
from app.runtime.webapp import create_app, web_app
from app.service.auth import issue_token
from app.service.services import Services

EMPLOYEE, MANAGER, OFFICER = "employee@dwp.gov.uk", "manager@dwp.gov.uk", "officer@dwp.gov.uk"
DETAILS: dict[str, Any] = {
    "account_kind": "individual_professional",
    "platform": "LinkedIn",
    "handle": "jo-example",
    "justification": "Recruitment",
    "device": "dwp_managed",
    "contact_email": "jo@example.com",
}


async def _client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(lambda: nullcontext(services))
    # httpx's transport runs no lifespan: enter it here, as uvicorn would.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://casework.test"
        ) as client,
    ):
        yield client


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(services):
        yield client


@pytest.fixture
async def offline_api(offline_services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(offline_services):
        yield client


@pytest.fixture
def tokens(sessions: sessionmaker[Session], people: None) -> dict[str, dict[str, str]]:
    with sessions.begin() as session:
        return {
            email: {"Authorization": f"Bearer {issue_token(session, email)}"}
            for email in (EMPLOYEE, MANAGER, OFFICER)
        }


def error_of(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    return message


async def test_openapi_documents_every_endpoint(offline_api: httpx.AsyncClient) -> None:
    doc = (await offline_api.get("/openapi.json")).json()
    assert set(doc["paths"]) == {
        "/healthz",
        "/api/me",
        "/api/cases",
        "/api/cases/{case_id}",
        "/api/cases/{case_id}/actions",
        "/api/cases/{case_id}/events",
        "/api/cases/{case_id}/evidence",
        "/api/cases/{case_id}/evidence/{sha256}",
        "/api/exports/cases",
        "/api/exports/events",
    }
    assert set(doc["paths"]["/api/cases"]) == {"get", "post"}
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    assert "CaseOut" in doc["components"]["schemas"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer not-a-token"}],
)
async def test_every_api_call_needs_a_valid_bearer_token(
    offline_api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for method, path in (("GET", "/api/me"), ("GET", "/api/cases"), ("POST", "/api/cases")):
        response = await offline_api.request(method, path, headers=headers, json={})
        assert error_of(response, 401, "unauthorized").startswith("token:")
        assert response.headers["www-authenticate"] == "Bearer"


async def test_me(offline_api: httpx.AsyncClient, tokens: dict[str, dict[str, str]]) -> None:
    response = await offline_api.get("/api/me", headers=tokens[OFFICER])
    assert response.json() == {
        "email": OFFICER,
        "name": "SAC Officer",
        "roles": ["sac"],
        "manager": "saclead@dwp.gov.uk",
    }


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b'{"type": "ipa_approval", ', 400, "body: malformed JSON"),
        (b'["ipa_approval"]', 400, "body: expected a JSON object"),
        (b"", 400, "body: expected a JSON object"),
        (b'{"details": {}}', 422, "type: Field required"),
        (b'{"type": 7}', 422, "type: Input should be a valid string"),
        (b'{"type": "ipa_approval", "details": []}', 422, "details: Input should be"),
        (b'{"type": "nope"}', 422, "type: unknown case type 'nope'"),
    ],
)
async def test_malformed_and_invalid_requests(
    offline_api: httpx.AsyncClient,
    tokens: dict[str, dict[str, str]],
    content: bytes,
    status: int,
    message: str,
) -> None:
    headers = {**tokens[EMPLOYEE], "Content-Type": "application/json"}
    response = await offline_api.post("/api/cases", content=content, headers=headers)
    code = "bad_request" if status == 400 else "invalid"
    assert error_of(response, status, code).startswith(message)


async def test_a_refused_intake_is_422_naming_field_and_section(
    offline_api: httpx.AsyncClient, tokens: dict[str, dict[str, str]]
) -> None:
    body = {"type": "ipa_approval", "details": {**DETAILS, "account_kind": "trade_union"}}
    response = await offline_api.post("/api/cases", json=body, headers=tokens[EMPLOYEE])
    assert error_of(response, 422, "invalid") == (
        "details.account_kind: official trade union accounts are outside this policy (policy 7.2)"
    )


async def test_unknown_paths_methods_and_cases(
    offline_api: httpx.AsyncClient, tokens: dict[str, dict[str, str]]
) -> None:
    auth = tokens[EMPLOYEE]
    assert "no such endpoint" in error_of(await offline_api.get("/api/nope"), 404, "not_found")
    error_of(await offline_api.delete("/api/cases", headers=auth), 405, "method_not_allowed")
    missing = await offline_api.get("/api/cases/IPA-1999-000001", headers=auth)
    assert error_of(missing, 404, "not_found") == "case: no such case IPA-1999-000001"
    bad_limit = await offline_api.get("/api/cases?limit=500", headers=auth)
    assert error_of(bad_limit, 422, "invalid").startswith("limit:")


async def test_bodies_over_one_mebibyte_are_413(
    offline_api: httpx.AsyncClient, tokens: dict[str, dict[str, str]]
) -> None:
    big = b'{"type": "ipa_approval", "details": {"justification": "' + b"x" * MAX_BODY + b'"}}'
    headers = {**tokens[EMPLOYEE], "Content-Type": "application/json"}
    response = await offline_api.post("/api/cases", content=big, headers=headers)
    assert error_of(response, 413, "too_large").startswith("body:")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    response = await offline_api.post("/api/cases", content=chunks(), headers=headers)
    error_of(response, 413, "too_large")


async def test_health_is_503_while_temporal_does_not_answer(
    offline_api: httpx.AsyncClient,
) -> None:
    response = await offline_api.get("/healthz")
    assert error_of(response, 503, "unavailable") == "not answering: temporal"


async def test_health_needs_no_token(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_a_case_through_the_api(
    api: httpx.AsyncClient, tokens: dict[str, dict[str, str]]
) -> None:
    opened = await api.post(
        "/api/cases", json={"type": "ipa_approval", "details": DETAILS}, headers=tokens[EMPLOYEE]
    )
    assert opened.status_code == 201, opened.text
    case = opened.json()
    case_id = case["id"]
    assert (case["stage"], case["actions"]) == ("manager_endorsement", ["withdraw", "comment"])
    path = f"/api/cases/{case_id}"
    shown = (await api.get(path, headers=tokens[MANAGER])).json()
    assert shown["actions"] == ["endorse", "decline", "comment"]

    async def action(who: str, body: dict[str, Any]) -> httpx.Response:
        return await api.post(f"{path}/actions", json=body, headers=tokens[who])

    assert "may not endorse" in error_of(
        await action(OFFICER, {"action": "endorse"}), 403, "forbidden"
    )
    error_of(await action(OFFICER, {"action": "approve"}), 409, "conflict")
    assert error_of(await action(MANAGER, {"action": "decline"}), 422, "invalid").startswith(
        "reason:"
    )
    assert error_of(await action(MANAGER, {"reason": "x"}), 422, "invalid").startswith("action:")
    endorsed = await action(MANAGER, {"action": "endorse"})
    assert (endorsed.status_code, endorsed.json()["stage"]) == (200, "sac_review")
    commented = await action(OFFICER, {"action": "comment", "text": "Looks fine"})
    assert commented.status_code == 200

    listed = await api.get("/api/cases?status=open&stage=sac_review", headers=tokens[OFFICER])
    assert [c["id"] for c in listed.json()["items"]] == [case_id]
    assert listed.json()["total"] == 1
    mine = await api.get("/api/cases?assignee=me", headers=tokens[MANAGER])
    assert mine.json() == {"items": [], "total": 0}  # endorsed: no longer waits on them

    events = (await api.get(f"{path}/events", headers=tokens[OFFICER])).json()["items"]
    assert set(events[0]) == {"seq", "at", "actor", "kind", "stage", "data", "hash", "prev_hash"}
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "opened"
    assert {"endorse", "comment"} <= set(kinds)
    assert kinds.count("refused") == 3  # a request without an action is no attempt
    comment = next(e for e in events if e["kind"] == "comment")
    assert comment["actor"] == OFFICER


async def test_the_real_app_serves_before_temporal_answers(
    tmp_path: Path, db_url: str, tokens: dict[str, dict[str, str]]
) -> None:
    settings = Settings.from_env(
        {
            "CASEWORK_DATA_DIR": str(tmp_path),
            "CASEWORK_DATABASE_URL": db_url,
            "CASEWORK_TEMPORAL_ADDRESS": "127.0.0.1:1",  # nothing listens there
        }
    )
    app = web_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://casework.test") as client,
    ):
        health = await client.get("/healthz")
        assert error_of(health, 503, "unavailable") == "not answering: temporal"
        me = await client.get("/api/me", headers=tokens[EMPLOYEE])
        assert (me.status_code, me.json()["manager"]) == (200, MANAGER)
        opened = await client.post(
            "/api/cases",
            json={"type": "ipa_approval", "details": DETAILS},
            headers=tokens[EMPLOYEE],
        )
        assert error_of(opened, 503, "unavailable").startswith("temporal:")
