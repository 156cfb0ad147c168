"""Single sign-on in a real browser: Alex signs in through the real OpenID Connect
provider (`oidc/provider.mjs`), raises a request and signs out (of the provider too);
Morgan signs in the same way and endorses it."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import nullcontext

import pytest
import uvicorn
from playwright.async_api import Browser, Page, expect
from sqlalchemy import Engine

from app.platform.db import session_factory
from app.platform.settings import Settings
from app.runtime import oidc_demo
from app.runtime.mailcatcher import MailCatcher
from app.runtime.webapp import create_app
from app.service.services import Services
from domain.policy import load_policy
from tests.fixtures_temporal import free_port, start_time_skipping
from tests.web.conftest import DEMO_PEOPLE, PEOPLE, WAIT_MS, _Server, eventually, shot
from tests.web.test_browser_journeys import action, current_stage, take
from worker import build_worker

pytestmark = pytest.mark.skipif(oidc_demo.available() is not None, reason="no demo provider")


@pytest.fixture
async def sso_site(
    chromium: Browser, browser_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """Casework with single sign-on through the demo provider, served on a free port."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    provider = oidc_demo.start(port=free_port(), base_url=base_url, people_csv=DEMO_PEOPLE)
    queue = f"sso-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(
        {
            "CASEWORK_DATA_DIR": str(tmp_path_factory.mktemp("sso-data")),
            "CASEWORK_DATABASE_URL": str(browser_engine.url),
            "CASEWORK_TASK_QUEUE": queue,
            "CASEWORK_HTTP_PORT": str(port),
            **provider.settings_env(),
        }
    )
    env = await start_time_skipping()
    catcher = MailCatcher(settings.data_dir)
    catcher.start()
    mailing = settings.model_copy(update={"smtp_host": catcher.host, "smtp_port": catcher.port})
    worker = build_worker(env.client, settings=mailing, engine=browser_engine, task_queue=queue)
    services = Services(
        settings=settings,
        sessions=session_factory(browser_engine),
        client=env.client,
        policy=load_policy(settings.policy_file),
    )
    app = create_app(lambda: nullcontext(services), settings)
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    try:
        async with worker:
            serving = asyncio.create_task(server.serve())
            try:
                await eventually(lambda: server.started or serving.done())
                assert server.started
                yield base_url
            finally:
                server.should_exit = True
                await serving
        executor = worker.config().get("activity_executor")
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)
    finally:
        catcher.stop()
        await env.shutdown()
        provider.stop()


async def sign_in(chromium: Browser, base_url: str, who: str) -> Page:
    context = await chromium.new_context(base_url=base_url)
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/signin"))
    await page.get_by_role("link", name="Sign in with your organisation's account").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to the demo provider")
    await shot(page, f"sso-provider-{who}")
    await page.get_by_label("Email").fill(PEOPLE[who])
    await page.get_by_label("Password").fill(oidc_demo.PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base_url}/")
    return page


async def test_alex_signs_in_with_sso_raises_a_request_and_morgan_endorses_it(
    chromium: Browser, sso_site: str
) -> None:
    alex = await sign_in(chromium, sso_site, "alex")
    await expect(alex.get_by_text("Signed in as Alex Turner")).to_be_visible()
    await alex.get_by_role("link", name="New case").click()
    await alex.get_by_role("link", name="IPA approval").click()
    await alex.get_by_label("Account kind").select_option("individual_professional")
    await alex.get_by_label("Platform").fill("X")
    await alex.get_by_label("Handle").fill("@alex_sso")
    await alex.get_by_label("Justification").fill("Recruitment events for the department")
    await alex.get_by_label("Device").select_option("dwp_managed")
    await alex.get_by_label("Contact email").fill("alex@example.com")
    await alex.get_by_role("button", name="Open the case").click()
    await alex.wait_for_url(re.compile(r"/cases/IPA-\d{4}-\d{6}$"))
    case_id = alex.url.rsplit("/", 1)[1]
    await expect(current_stage(alex)).to_contain_text("Manager endorsement")
    await shot(alex, "sso-opened-alex")
    # Signing out ends the provider's session too: it asks, then comes back here.
    await alex.get_by_role("button", name="Sign out").click()
    await expect(alex.get_by_role("heading", level=1)).to_have_text(
        "Sign out of the demo provider?"
    )
    await alex.get_by_role("button", name="Sign out").click()
    await alex.wait_for_url(re.compile(r"/signin"))
    await alex.goto(f"/cases/{case_id}")
    await expect(alex).to_have_url(re.compile(r"/signin"))

    morgan = await sign_in(chromium, sso_site, "morgan")
    await morgan.get_by_role("link", name=case_id).click()
    await morgan.wait_for_url(f"**/cases/{case_id}")
    await expect(action(morgan, "Endorse")).to_be_visible()
    await take(morgan, "Endorse")
    await expect(morgan.get_by_role("status")).to_contain_text("now at the SAC review stage")
    await shot(morgan, "sso-endorsed-morgan")
