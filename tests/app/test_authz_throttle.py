"""Repeated bad tokens are slowed down (app.service.throttle): per client address and per token
prefix, past the limit every attempt is 429 with Retry-After until the window passes."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app import service
from app.runtime.webapp import create_app
from app.service.auth import issue_token
from app.service.errors import Unauthorized
from app.service.services import Services
from app.service.throttle import AuthThrottle, TooManyAttempts, keys_for
from tests.app.web.conftest import Browser


class Clock:
    """Seconds that pass only when the test says so: no test here waits on real time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def token_for(sessions: sessionmaker[Session], email: str) -> str:
    with sessions.begin() as session:
        return issue_token(session, email)


# ---- the throttle alone ------------------------------------------------------------------


def test_past_the_limit_a_key_waits_for_its_oldest_failure_to_leave_the_window(
    clock: Clock,
) -> None:
    throttle = AuthThrottle(failures=3, window=60, clock=clock)
    keys = keys_for(client="10.0.0.1", token="abcdefgh-rest")
    assert keys == ["client:10.0.0.1", "token:abcdefgh"]
    for at in (1000.0, 1010.0, 1030.0):
        clock.now = at
        throttle.check(keys)
        throttle.failed(keys)
    with pytest.raises(TooManyAttempts) as refused:
        throttle.check(keys)
    assert (refused.value.status, refused.value.code) == (429, "too_many_requests")
    assert refused.value.retry_after == 30 and refused.value.headers == {"Retry-After": "30"}
    clock.now = 1059.5
    with pytest.raises(TooManyAttempts) as still:
        throttle.check(keys)
    assert still.value.retry_after == 1  # never "0": a client would retry at once
    clock.now = 1060.0  # the first failure has left the window: one more try
    throttle.check(keys)
    throttle.failed(keys)
    with pytest.raises(TooManyAttempts):
        throttle.check(keys)


def test_each_key_counts_alone_and_memory_is_bounded(clock: Clock) -> None:
    throttle = AuthThrottle(failures=2, window=60, clock=clock, max_keys=3)
    for token in ("aaaaaaaa1", "aaaaaaaa2"):  # one prefix, two addresses
        throttle.failed(keys_for(client=f"10.0.0.{token[-1]}", token=token))
    with pytest.raises(TooManyAttempts):
        throttle.check(keys_for(client="10.0.0.9", token="aaaaaaaa3"))
    throttle.check(keys_for(client="10.0.0.1", token="bbbbbbbb"))  # address 1 failed once
    for other in ("x", "y", "z"):  # three more keys: the three older ones are forgotten
        throttle.failed([f"client:{other}"])
    throttle.check(["token:aaaaaaaa"])
    assert keys_for(client=None, token="") == []


def test_failures_older_than_the_window_are_forgotten(clock: Clock) -> None:
    throttle = AuthThrottle(failures=2, window=60, clock=clock)
    throttle.failed(["client:a"])
    clock.now += 61
    throttle.failed(["client:a"])
    throttle.check(["client:a"])  # one failure in the window, not two


# ---- through the service layer and the API ----------------------------------------------


async def test_the_service_counts_only_failed_sign_ins(
    offline_services: Services, sessions: sessionmaker[Session], clock: Clock
) -> None:
    svc = dataclasses.replace(offline_services, throttle=AuthThrottle(failures=2, clock=clock))
    good = token_for(sessions, "employee@dwp.gov.uk")
    for _ in range(5):  # successes never count
        await service.authenticate(svc, token=good, client="10.0.0.1")
    for _ in range(2):
        with pytest.raises(Unauthorized) as bad:
            await service.authenticate(svc, token="x" * 43, client="10.0.0.1")
        assert bad.value.status == 401
    with pytest.raises(TooManyAttempts):
        await service.authenticate(svc, token=good, client="10.0.0.1")
    assert (await service.authenticate(svc, token=good, client="10.0.0.2")).email == (
        "employee@dwp.gov.uk"
    )


@asynccontextmanager
async def api_from(
    svc: Services,
) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """A function giving an HTTP client that calls from a given address."""
    app = create_app(lambda: nullcontext(svc))
    clients: list[httpx.AsyncClient] = []

    def from_address(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://casework.test")
        clients.append(client)
        return client

    async with app.router.lifespan_context(app):
        try:
            yield from_address
        finally:
            for client in clients:
                await client.aclose()


async def test_the_api_answers_429_with_retry_after_per_address_and_per_prefix(
    offline_services: Services, sessions: sessionmaker[Session], clock: Clock
) -> None:
    svc = dataclasses.replace(
        offline_services, throttle=AuthThrottle(failures=3, window=60, clock=clock)
    )
    good = {"Authorization": f"Bearer {token_for(sessions, 'employee@dwp.gov.uk')}"}
    async with api_from(svc) as api:
        guesser, neighbour = api("192.0.2.1"), api("192.0.2.2")
        for n in range(3):
            bad = {"Authorization": f"Bearer guess{n}-{'x' * 38}"}
            response = await guesser.get("/api/me", headers=bad)
            assert response.status_code == 401
        response = await guesser.get("/api/me", headers={"Authorization": "Bearer guess9"})
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "60"
        body = response.json()
        assert body["error"]["code"] == "too_many_requests"
        assert "too many failed attempts" in body["error"]["message"]
        # Even a good token from that address waits; from another address it works.
        assert (await guesser.get("/api/me", headers=good)).status_code == 429
        assert (await neighbour.get("/api/me", headers=good)).status_code == 200
        # No token at all is no guess, and is not counted.
        assert (await neighbour.get("/api/me")).status_code == 401

        # One token prefix guessed from many addresses is throttled as one.
        for n in range(3):
            bad = {"Authorization": f"Bearer SAMEPREF{n}"}
            assert (await api(f"198.51.100.{n}").get("/api/me", headers=bad)).status_code == 401
        response = await api("198.51.100.99").get(
            "/api/me", headers={"Authorization": "Bearer SAMEPREFzz"}
        )
        assert response.status_code == 429

        clock.now += 60  # the window has passed
        assert (await guesser.get("/api/me", headers=good)).status_code == 200


async def test_the_sign_in_page_is_throttled_too(
    offline_services: Services, sessions: sessionmaker[Session], clock: Clock
) -> None:
    svc = dataclasses.replace(offline_services, throttle=AuthThrottle(failures=2, clock=clock))
    good = token_for(sessions, "employee@dwp.gov.uk")
    app = create_app(lambda: nullcontext(svc))
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://casework.test") as client,
    ):
        browser = Browser(client, sessions)
        await browser.get("/signin")
        for guess in ("guess-one", "guess-two"):
            page = await browser.post("/signin", {"token": guess, "next": "/"})
            assert page.status_code == 401
        page = await browser.post("/signin", {"token": good, "next": "/"})
        assert page.status_code == 429
        assert "too many failed attempts; try again in 60 s" in page.text
        clock.now += 60
        page = await browser.post("/signin", {"token": good, "next": "/"})
        assert page.status_code == 303
