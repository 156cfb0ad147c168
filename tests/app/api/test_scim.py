"""SCIM 2.0 at /scim/v2: compliance by scim2-tester against the app served over real
HTTP, what the tester does not check (the secret, filters, bodies that are not SCIM),
groups as roles, and the leaver scenario through escalations on the time-skipping
server. On both databases."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import nullcontext
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from app import service
from app.runtime.webapp import create_app
from app.service.errors import Unauthorized
from app.service.services import Services
from domain.policy import DEFAULT_POLICY_FILE, parse_policy
from models import Person
from tests.app.service.test_cases import AUDITOR, DETAILS, kinds
from tests.fixtures_temporal import SmtpSink, eventually
from tests.workflows.helpers import escalated
from workflows.common import Actor

SECRET = "scim-secret-" + "x" * 32
SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def with_scim(svc: Services, token: str | None = SECRET) -> Services:
    return replace(svc, settings=svc.settings.model_copy(update={"scim_token": token}))


@pytest.fixture
async def scim(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(lambda: nullcontext(with_scim(services)))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://casework.test/scim/v2",
            headers={"Authorization": f"Bearer {SECRET}", "Content-Type": SCIM},
        ) as client,
    ):
        yield client


def user(email: str, name: str, manager: str | None = None, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [USER], "userName": email, "displayName": name, **more}
    if manager:
        body["schemas"] = [USER, ENTERPRISE]
        body[ENTERPRISE] = {"manager": {"value": manager}}
    return body


async def provision(scim: httpx.AsyncClient, email: str, name: str, manager: str | None) -> str:
    made = await scim.post("/Users", json=user(email, name, manager))
    assert made.status_code == 201, made.text
    assert made.headers["content-type"].startswith(SCIM)
    person_id: str = made.json()["id"]
    return person_id


def is_scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> bool:
    body = response.json()
    return (
        response.status_code == status
        and body["schemas"] == [ERROR]
        and body["status"] == str(status)
        and (scim_type is None or body.get("scimType") == scim_type)
    )


async def people_count(svc: Services) -> int:
    return int(await svc.run(lambda s: s.scalar(select(func.count()).select_from(Person))))


@pytest.fixture
async def served(offline_services: Services) -> AsyncIterator[str]:
    app = create_app(lambda: nullcontext(with_scim(offline_services)))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/scim/v2"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_scim2_tester_finds_the_server_compliant(served: str) -> None:
    def check() -> list[Any]:
        headers = {"Authorization": f"Bearer {SECRET}"}
        with httpx2.Client(base_url=served, headers=headers) as http:
            return check_server(SyncSCIMClient(http))

    results = await asyncio.to_thread(check)
    tally = Counter(r.status.name for r in results)
    print(f"scim2-tester: {len(results)} checks, {dict(tally)}")
    failed = [
        f"{r.title}: {r.reason}" for r in results if r.status in (Status.ERROR, Status.CRITICAL)
    ]
    assert not failed, "\n".join(failed)
    assert tally["SUCCESS"] > 50


async def test_without_the_secret_nothing_is_read_or_changed(
    scim: httpx.AsyncClient, services: Services
) -> None:
    before = await people_count(services)
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {SECRET}"},
    ):
        listed = await scim.get("/Users", headers=headers)
        assert is_scim_error(listed, 401)
        made = await scim.post("/Users", json=user("new@dwp.gov.uk", "New"), headers=headers)
        assert is_scim_error(made, 401)
    assert await people_count(services) == before
    # SCIM switched off: not there at all.
    app = create_app(lambda: nullcontext(with_scim(services, None)))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as off,
    ):
        answer = await off.get("/scim/v2/Users", headers={"Authorization": f"Bearer {SECRET}"})
        assert is_scim_error(answer, 404)


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        (b"{not json", "invalidSyntax"),
        (b'["a list"]', "invalidSyntax"),
        (b'{"schemas": ["urn:x:not-a-user"], "userName": "a@dwp.gov.uk"}', "invalidValue"),
        (b'{"schemas": ["' + USER.encode() + b'"], "displayName": "No user name"}', "invalidValue"),
        (b'{"schemas": ["' + USER.encode() + b'"], "userName": "not-an-email"}', "invalidValue"),
        (
            b'{"schemas": ["'
            + USER.encode()
            + b'"], "userName": "a@dwp.gov.uk", "active": "maybe"}',
            "invalidValue",
        ),
    ],
)
async def test_a_body_that_is_not_valid_scim_is_refused(
    scim: httpx.AsyncClient, services: Services, body: bytes, scim_type: str
) -> None:
    before = await people_count(services)
    answer = await scim.post("/Users", content=body)
    assert is_scim_error(answer, 400, scim_type), answer.text
    assert await people_count(services) == before


async def test_filters_the_server_offers_and_those_it_does_not(scim: httpx.AsyncClient) -> None:
    found = await scim.get("/Users", params={"filter": 'userName eq "Employee@dwp.gov.uk"'})
    assert found.status_code == 200
    assert [r["userName"] for r in found.json()["Resources"]] == ["employee@dwp.gov.uk"]
    none = await scim.get("/Users", params={"filter": 'userName eq "nobody@dwp.gov.uk"'})
    assert none.json()["totalResults"] == 0
    for unsupported in (
        'displayName co "Emp"',
        'userName sw "emp"',
        "userName eq",
        "title pr",
        'userName eq "a" or userName eq "b"',
    ):
        refused = await scim.get("/Users", params={"filter": unsupported})
        assert is_scim_error(refused, 400, "invalidFilter"), unsupported
    assert is_scim_error(await scim.post("/Users/.search", json={}), 501)


async def test_groups_give_roles_and_a_manager_change_counts(
    scim: httpx.AsyncClient, services: Services
) -> None:
    boss = await provision(scim, "boss@dwp.gov.uk", "Boss", None)
    worker = await provision(scim, "worker@dwp.gov.uk", "Worker", boss)
    group = await scim.post(
        "/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "sac",
            "members": [{"value": worker}],
        },
    )
    assert group.status_code == 201, group.text
    me = await service.actor_for(services, email="worker@dwp.gov.uk")
    assert me.roles == ["sac"]
    assert (await service.whoami(services, actor=me))["manager"] == "boss@dwp.gov.uk"
    removed = await scim.patch(
        f"/Groups/{group.json()['id']}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "remove", "path": f'members[value eq "{worker}"]'}],
        },
    )
    assert removed.status_code == 200, removed.text
    assert (await service.actor_for(services, email="worker@dwp.gov.uk")).roles == []
    # A manager change, by PATCH; a loop is refused.
    loop = await scim.put(f"/Users/{boss}", json=user("boss@dwp.gov.uk", "Boss", worker))
    assert is_scim_error(loop, 400, "invalidValue") and "loops" in loop.json()["detail"]
    moved = await scim.patch(
        f"/Users/{worker}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {
                    "op": "replace",
                    "path": f"{ENTERPRISE}:manager",
                    "value": {"value": "ceo@dwp.gov.uk"},
                }
            ],
        },
    )
    assert moved.status_code == 200, moved.text
    assert (await service.whoami(services, actor=me))["manager"] == "ceo@dwp.gov.uk"
    renamed = await scim.put(f"/Users/{boss}", json=user("someone.else@dwp.gov.uk", "Boss"))
    assert is_scim_error(renamed, 400)


async def test_a_manager_deactivated_by_scim_and_the_next_escalation_goes_further_up(
    scim: httpx.AsyncClient,
    services: Services,
    time_skipping_env: WorkflowEnvironment,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    # A fast policy: an endorsement is due in an hour, then escalates every hour.
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8").replace(
        'sla = "3wd"\nremind = "2wd"\nescalate_every = "2wd"',
        'sla = "PT1H"\nremind = "PT30M"\nescalate_every = "PT1H"',
        1,
    )
    assert 'sla = "PT1H"' in text
    services = replace(services, policy=parse_policy(text))
    director = await provision(scim, "director@dwp.gov.uk", "Director", "ceo@dwp.gov.uk")
    manager = await provision(scim, "lead@dwp.gov.uk", "Team Manager", director)
    await provision(scim, "person@dwp.gov.uk", "Person", manager)
    person = await service.actor_for(services, email="person@dwp.gov.uk")
    case = await service.open_case(
        services, actor=person, case_type="ipa_approval", details=DETAILS
    )
    assert case["stage"] == "manager_endorsement"
    await eventually(lambda: len(sink.to("lead@dwp.gov.uk")) >= 1)  # the manager is told
    # Past the due time: the first escalation goes to the manager's manager.
    await time_skipping_env.sleep(timedelta(minutes=80))
    await escalated(services.client.get_workflow_handle(case["id"]), 1)
    mails_to_manager = len(sink.to("lead@dwp.gov.uk"))

    gone = await scim.patch(
        f"/Users/{manager}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    assert gone.status_code == 200 and gone.json()["active"] is False
    with pytest.raises(Unauthorized):
        await service.actor_for(services, email="lead@dwp.gov.uk")
    shown = await service.get_case(services, actor=AUDITOR, case_id=case["id"], owner=True)
    assert shown["owner"] == "director@dwp.gov.uk"

    # The next escalation counts from the director: one level further up, the CEO.
    handle = services.client.get_workflow_handle(case["id"])
    await time_skipping_env.sleep(timedelta(minutes=60))
    await escalated(handle, 1)
    trail = await kinds(services, case["id"])
    moves = [(k, d.get("to")) for k, d in trail if k in ("escalated", "rerouted")]
    assert moves == [
        ("escalated", "director@dwp.gov.uk"),
        ("rerouted", "director@dwp.gov.uk"),
        ("escalated", "ceo@dwp.gov.uk"),
    ]
    rerouted = next(d for k, d in trail if k == "rerouted")
    assert rerouted["from"] == "lead@dwp.gov.uk" and rerouted["reason"] == "deactivated by SCIM"
    assert len(sink.to("lead@dwp.gov.uk")) == mails_to_manager  # never mailed again
    # The director may endorse now.
    director_actor = Actor("director@dwp.gov.uk", [], "Director")
    done = await service.act(
        services, actor=director_actor, case_id=case["id"], action="endorse", fields={}
    )
    assert done["stage"] == "sac_review"
    # Deleting a user deactivates them and removes them from SCIM.
    deleted = await scim.delete(f"/Users/{director}")
    assert deleted.status_code == 204
    assert is_scim_error(await scim.get(f"/Users/{director}"), 404)
