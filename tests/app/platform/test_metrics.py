"""/metrics: the read model's counts at scrape time, and the API's action latencies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from app.platform.metrics import sdk_runtime
from app.platform.settings import Settings, SettingsError
from app.runtime.webapp import create_app
from app.service.auth import issue_token
from app.service.services import Services
from tests.fixtures_temporal import eventually

EMPLOYEE, MANAGER = "employee@dwp.gov.uk", "manager@dwp.gov.uk"
IPA = {
    "type": "ipa_approval",
    "details": {
        "account_kind": "individual_professional",
        "platform": "LinkedIn",
        "handle": "jo-example",
        "justification": "Recruitment",
        "device": "dwp_managed",
        "contact_email": "jo@example.com",
    },
}
OPEN_AT_ENDORSEMENT = 'casework_cases_open{stage="manager_endorsement",type="ipa_approval"}'


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(lambda: nullcontext(services))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://casework.test"
        ) as client,
    ):
        yield client


@pytest.fixture
def auth(sessions: sessionmaker[Session], people: None) -> dict[str, dict[str, str]]:
    with sessions.begin() as session:
        return {
            email: {"Authorization": f"Bearer {issue_token(session, email)}"}
            for email in (EMPLOYEE, MANAGER)
        }


async def scrape(api: httpx.AsyncClient) -> dict[str, float]:
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            samples[series] = float(value)
    return samples


def action_count(samples: dict[str, float], action: str, result: str) -> float:
    labels = f'action="{action}",result="{result}",type="ipa_approval"'
    return samples.get(f"casework_action_seconds_count{{{labels}}}", 0.0)


async def test_counts_follow_a_case_from_opened_to_closed(
    api: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    before = await scrape(api)  # no token: Prometheus scrapes without one
    assert 'casework_cases_opened_total{type="ipa_approval"}' not in before

    opened = await api.post("/api/cases", json=IPA, headers=auth[EMPLOYEE])
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    during = await scrape(api)
    assert during['casework_cases_opened_total{type="ipa_approval"}'] == 1
    assert during[OPEN_AT_ENDORSEMENT] == 1
    assert during['casework_cases_overdue{stage="manager_endorsement",type="ipa_approval"}'] == 0

    refused = await api.post(
        f"/api/cases/{case_id}/actions", json={"action": "endorse"}, headers=auth[EMPLOYEE]
    )
    assert refused.status_code == 403
    declined = await api.post(
        f"/api/cases/{case_id}/actions",
        json={"action": "decline", "reason": "Not now"},
        headers=auth[MANAGER],
    )
    assert declined.status_code == 200, declined.text

    after = await scrape(api)
    assert after['casework_cases_closed_total{outcome="declined",type="ipa_approval"}'] == 1
    assert OPEN_AT_ENDORSEMENT not in after
    assert action_count(after, "decline", "ok") == action_count(before, "decline", "ok") + 1
    assert action_count(after, "endorse", "forbidden") == (
        action_count(before, "endorse", "forbidden") + 1
    )

    async def mailed() -> bool:
        sent = (await scrape(api)).get('casework_emails_total{kind="opened",status="sent"}', 0)
        return sent >= 1

    await eventually(mailed)


async def test_overdue_and_escalations_once_a_stage_is_late(
    api: httpx.AsyncClient,
    auth: dict[str, dict[str, str]],
    time_skipping_env: WorkflowEnvironment,
) -> None:
    opened = await api.post("/api/cases", json=IPA, headers=auth[EMPLOYEE])
    assert opened.status_code == 201, opened.text
    # Well past the stage's SLA (working days) and its first escalation.
    await time_skipping_env.sleep(timedelta(days=10))

    async def escalated() -> bool:
        samples: dict[str, Any] = await scrape(api)
        return bool(
            samples.get('casework_cases_overdue{stage="manager_endorsement",type="ipa_approval"}')
            == 1
            and samples.get('casework_escalations_total{type="ipa_approval"}', 0) >= 1
        )

    await eventually(escalated)


async def test_an_unknown_action_name_is_counted_as_other(
    api: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    before = await scrape(api)
    response = await api.post(
        "/api/cases/IPA-2026-999999/actions", json={"action": "x" * 30}, headers=auth[EMPLOYEE]
    )
    assert response.status_code == 404
    after = await scrape(api)
    assert (
        action_count(after, "other", "not_found") == action_count(before, "other", "not_found") + 1
    )
    assert not any("x" * 30 in series for series in after)


def test_the_sdk_metrics_port_setting(tmp_path: Path) -> None:
    base = {"CASEWORK_DATA_DIR": str(tmp_path)}
    unset = Settings.from_env(base)
    assert unset.metrics_port is None
    assert sdk_runtime(unset) is None  # no endpoint, and the default runtime left alone
    assert Settings.from_env({**base, "CASEWORK_METRICS_PORT": "9464"}).metrics_port == 9464
    with pytest.raises(SettingsError, match="CASEWORK_METRICS_PORT: must be a whole number"):
        Settings.from_env({**base, "CASEWORK_METRICS_PORT": "metrics"})
