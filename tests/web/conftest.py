"""Browser tests: the real app served by uvicorn, driven by Playwright in Debian's Chromium.

One stack for the tests of this folder, as `casework up` runs it: SQLite records, a worker on
the time-skipping Temporal test server (so a test can move time on and watch a case
fall overdue), the mail catcher, and the demo people of `app/runtime/demo_people.csv`. The
web server gets the settings as given (no SMTP host: its mail page is on) while the
worker sends to the catcher. Each person browses in a context of their own (their
own cookies), signing in with a real token through the sign-in form.

Chromium is Debian's (`make chromium` installs it); Playwright's own browser download
is never used. Every page a test visits can be saved with `shot`, into
`test-output/screenshots/`.

Every page a test visits is checked by axe-core (from the npm registry: `make assets`)
against WCAG 2.2 AA: each HTML document the app answers a person's browser with is
kept as it came, and after the test, rendered again unchanged (scripts and styles
included) in a page of its own, where axe runs; any violation fails the test. Checking
a copy, not the person's page, keeps the check from racing the test's next click.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import (
    Browser,
    BrowserContext,
    Error,
    Locator,
    Page,
    Request,
    Route,
    async_playwright,
    expect,
)
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from app.platform.db import make_engine, migrate, session_factory
from app.platform.settings import Settings
from app.runtime.mailcatcher import MailCatcher
from app.runtime.webapp import create_app
from app.service.auth import issue_token
from app.service.mailbox import CaughtMail, list_messages
from app.service.people import import_people
from app.service.services import Services
from domain.policy import load_policy
from tests.fixtures_temporal import free_port, start_time_skipping
from worker import build_worker

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Generous waits (a shared, busy machine): these bound a wait, they do not measure speed.
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
DEMO_PEOPLE = ROOT / "app" / "runtime" / "demo_people.csv"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.2 AA, as axe-core tags it.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
AXE_RUN = """tags => axe.run(document, {runOnly: {type: 'tag', values: tags}}).then(r =>
  r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"""

# The demo people by first name (app/runtime/demo_people.csv).
PEOPLE = {
    "dana": "dana.director@dwp.gov.uk",
    "harper": "harper.head@dwp.gov.uk",
    "morgan": "morgan.manager@dwp.gov.uk",
    "alex": "alex.employee@dwp.gov.uk",
    "jordan": "jordan.employee@dwp.gov.uk",
    "lee": "lee.saclead@dwp.gov.uk",
    "sam": "sam.sac@dwp.gov.uk",
    "robin": "robin.sirtlead@dwp.gov.uk",
    "jo": "jo.sirt@dwp.gov.uk",
    "kim": "kim.hrlead@dwp.gov.uk",
    "pat": "pat.hr@dwp.gov.uk",
    "ava": "ava.auditor@dwp.gov.uk",
    "ali": "ali.admin@dwp.gov.uk",
}


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C belongs to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class Document:
    """An HTML page as the app answered it: what axe checks after the test."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Stack:
    base_url: str
    services: Services
    env: WorkflowEnvironment
    data_dir: Path
    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)  # the digests of pages axe has seen

    def token(self, who: str) -> str:
        with self.services.sessions.begin() as session:
            return issue_token(session, PEOPLE.get(who, who))

    async def page(self, width: int | None = None) -> Page:
        """A fresh browser context (no cookies) and a page in it, `width` CSS pixels wide
        if given (a phone's 390); each HTML page it is answered with is kept for axe
        (`check_accessibility`)."""
        context = await (
            self.browser.new_context(
                base_url=self.base_url, viewport={"width": width, "height": 844}
            )
            if width
            else self.browser.new_context(base_url=self.base_url)
        )
        context.set_default_timeout(WAIT_MS)
        await context.route("**/*", self._keep_documents)
        self.contexts.append(context)
        return await context.new_page()

    async def _keep_documents(self, route: Route, request: Request) -> None:
        if request.resource_type != "document" or not request.url.startswith(self.base_url):
            await route.continue_()
            return
        response = await route.fetch(max_redirects=0)
        if response.headers.get("content-type", "").startswith("text/html"):
            body = await response.body()
            self.documents.append(Document(request.url, response.status, response.headers, body))
        await route.fulfill(response=response)

    async def check_accessibility(self) -> list[str]:
        """axe-core on every page kept since the last check: each rendered again as it
        came, in a context of its own; the violations, one line each."""
        documents, self.documents = self.documents, []
        found: list[str] = []
        context = await self.browser.new_context(base_url=self.base_url, bypass_csp=True)
        try:
            page = await context.new_page()
            for doc in documents:
                digest = hashlib.sha256(doc.url.encode() + doc.body).hexdigest()
                if digest in self.checked:
                    continue
                self.checked.add(digest)
                found += [f"{doc.url}: {v}" for v in await _axe(page, doc)]
        finally:
            await context.close()
        return found

    async def sign_in(self, who: str, path: str = "/", width: int | None = None) -> Page:
        """A page with `who` signed in through the sign-in form, then at `path`."""
        page = await self.page(width)
        await page.goto(f"/signin?next={path}")
        await page.get_by_label("Token").fill(self.token(who))
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(re.compile(r"^(?!.*/signin).*$"))
        return page

    def mail(self) -> list[CaughtMail]:
        return list_messages(self.data_dir)

    async def close_contexts(self) -> None:
        contexts, self.contexts = self.contexts, []
        for context in contexts:
            await context.close()


async def _axe(page: Page, doc: Document) -> list[str]:
    """axe's WCAG 2.2 AA violations on `doc`, served again at its own address."""

    async def serve(route: Route, request: Request) -> None:
        if request.is_navigation_request() and request.url == doc.url:
            await route.fulfill(status=doc.status, headers=doc.headers, body=doc.body)
        else:
            await route.continue_()

    await page.route("**/*", serve)
    try:
        await page.goto(doc.url, wait_until="load")
        await page.add_script_tag(path=str(AXE))
        violations = await page.evaluate(AXE_RUN, AXE_TAGS)
    except Error as e:  # the page could not be shown again: say so, as a failure
        return [f"not checked: {e.message.splitlines()[0]}"]
    finally:
        await page.unroute("**/*", serve)
    return [json.dumps(v) for v in violations]


async def shot(page: Page | Locator, name: str) -> Path:
    """Save a screenshot of the whole page (or of one element) as
    test-output/screenshots/<name>.png. Its page is brought to the front first: with
    several people's pages open, Chromium does not paint a frame of one behind."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    await (page.page if isinstance(page, Locator) else page).bring_to_front()
    if isinstance(page, Locator):
        await page.screenshot(path=str(path))
    else:
        await page.screenshot(path=str(path), full_page=True)
    return path


async def eventually(check: Callable[[], Awaitable[bool] | bool], *, timeout: float = 60) -> None:
    """Wait for what the worker does in the background (mail, escalations): a wait, not a
    timing assertion."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


@pytest.fixture(scope="package")
async def chromium() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make chromium` installs Debian's Chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(scope="package")
async def browser_engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Engine]:
    """A migrated SQLite database with the demo people, for this folder's tests."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser-db') / 'casework.db'}"
    await asyncio.to_thread(migrate, url)
    engine = make_engine(url)
    with session_factory(engine).begin() as session:
        import_people(session, DEMO_PEOPLE.read_text())
    yield engine
    engine.dispose()


@pytest.fixture(scope="package")
async def stack(
    chromium: Browser, browser_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    engine = browser_engine
    data_dir = tmp_path_factory.mktemp("browser-data")
    queue = f"browser-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(
        {
            "CASEWORK_DATA_DIR": str(data_dir),
            "CASEWORK_DATABASE_URL": str(engine.url),
            "CASEWORK_TASK_QUEUE": queue,
        }
    )
    env = await start_time_skipping()
    catcher = MailCatcher(data_dir)
    catcher.start()
    mailing = settings.model_copy(update={"smtp_host": catcher.host, "smtp_port": catcher.port})
    worker = build_worker(env.client, settings=mailing, engine=engine, task_queue=queue)
    services = Services(
        settings=settings,
        sessions=session_factory(engine),
        client=env.client,
        policy=load_policy(settings.policy_file),
    )
    port = free_port()
    app = create_app(lambda: nullcontext(services), settings)
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none")
    )
    try:
        async with worker:
            serving = asyncio.create_task(server.serve())
            try:
                await eventually(lambda: server.started or serving.done())
                assert server.started, "the web server did not start"
                stack = Stack(f"http://127.0.0.1:{port}", services, env, data_dir, chromium)
                yield stack
                await stack.close_contexts()
            finally:
                server.should_exit = True
                await serving
        executor = worker.config().get("activity_executor")
        if executor is not None:  # its threads may still hold database connections
            await asyncio.to_thread(executor.shutdown, wait=True)
    finally:
        catcher.stop()
        await env.shutdown()


@pytest.fixture
async def web(stack: Stack) -> AsyncIterator[Stack]:
    """The stack, with each test's browser contexts closed after it, and every page the
    test visited checked by axe-core: any WCAG 2.2 AA violation fails the test."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make assets` installs axe-core from npm")
    stack.documents.clear()
    yield stack
    await stack.close_contexts()
    violations = await stack.check_accessibility()
    assert not violations, "axe-core (WCAG 2.2 AA):\n" + "\n".join(violations)
