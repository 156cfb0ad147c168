"""Clients for the page tests: a browser-like httpx client (cookies kept, redirects not
followed) over the real app, and a helper to sign in as someone with a real token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import nullcontext

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.runtime.webapp import create_app
from app.service.auth import issue_token
from app.service.services import Services

BASE = "http://casework.test"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """One person's httpx client: keeps the session cookie, reads CSRF tokens off pages."""

    def __init__(self, client: httpx.AsyncClient, sessions: sessionmaker[Session]) -> None:
        self.client = client
        self.sessions = sessions
        self.csrf = ""

    async def get(self, path: str, **kw: object) -> httpx.Response:
        response = await self.client.get(path, **kw)  # type: ignore[arg-type]
        if match := CSRF.search(response.text):
            self.csrf = match.group(1)
        return response

    async def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        """Post a form as the page would: with the CSRF token of the last page read."""
        if not self.csrf:
            await self.get("/signin")
        return await self.client.post(path, data={"csrf_token": self.csrf, **(data or {})})

    async def sign_in(self, email: str) -> None:
        with self.sessions.begin() as session:
            token = issue_token(session, email)
        await self.get("/signin")
        response = await self.post("/signin", {"token": token, "next": "/"})
        assert response.status_code == 303, response.text
        await self.get("/")  # a fresh CSRF token, as signing in makes a new one


async def _app_client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(lambda: nullcontext(services))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        yield client


@pytest.fixture
async def browser_factory(services: Services) -> AsyncIterator[Callable[[], Browser]]:
    """`await open_browser()` -> a new Browser (its own cookies) on one shared app."""
    app = create_app(lambda: nullcontext(services))
    clients: list[httpx.AsyncClient] = []
    async with app.router.lifespan_context(app):

        def open_browser() -> Browser:
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
            clients.append(client)
            return Browser(client, services.sessions)

        yield open_browser
        for client in clients:
            await client.aclose()


@pytest.fixture
async def offline_browser(offline_services: Services) -> AsyncIterator[Browser]:
    async for client in _app_client(offline_services):
        yield Browser(client, offline_services.sessions)
