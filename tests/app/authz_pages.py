"""The staff pages as one more surface of the authorisation table (`test_authz_table.py`):
each person signed in through the sign-in form with their own token, as a browser would,
and asked what the table says they owe.

Per stage and person: the case page (404, outline or whole), the case listed on their
work page or not, the action forms the case page offers,
every action form they may not use POSTed anyway (refused with the API's status, leaving
only a `refused` record in the audit trail), every form they may use POSTed without the
CSRF token (403) or over the body limit (413), changing nothing, and each evidence file
downloaded (whole view only). Once per case type: the new-case forms. At the end: the
dashboard and the mail page.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import func, select

from app.api.limits import MAX_BODY
from app.runtime.webapp import create_app
from app.service.mailbox import list_messages
from app.service.services import Services
from models import Case, CaseEvent
from tests.app.web.conftest import BASE, Browser

if TYPE_CHECKING:
    from tests.app.test_authz_table import Observed, Table

CSRF_REFUSED = "this form did not come from this sign-in"
# The upload form's body limit, small enough to go over cheaply.
EVIDENCE_LIMIT = 64 * 1024
EVIDENCE = b"%PDF-1.4 a screenshot of the posts\n"
# Team leads, auditors and administrators (API.md, the dashboard).
DASHBOARD_READERS = ("auditor", "admin")
# Auditors and administrators read every caught message; anyone else, their own.
READS_ALL_MAIL = ("auditor", "admin")


def page_services(services: Services) -> Services:
    """The pages' services: the embedded stack's, with the mail catcher in use (no relay
    named, so the mail page reads the data directory) and a small evidence limit."""
    settings = services.settings.model_copy(
        update={"smtp_host": None, "evidence_max_bytes": EVIDENCE_LIMIT}
    )
    return replace(services, settings=settings)


def as_form(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Values as a person types them into the forms (app.web.fields reads them back)."""
    form: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, dict):
            form.update(as_form(value, f"{prefix}{name}."))
        elif isinstance(value, list):
            form[prefix + name] = "\n".join(value)
        elif isinstance(value, bool):
            form[prefix + name] = "yes" if value else "no"
        else:
            form[prefix + name] = str(value)
    return form


def page_view(page: httpx.Response) -> str | None:
    """How the case page showed the case: whole, in outline, or not at all (404 page)."""
    if page.status_code == 404:
        return None
    if 'id="details-title">' in page.text:
        return "whole"
    return "partial" if "You see only its outline" in page.text else f"? {page.status_code}"


def offered(page: httpx.Response, case_id: str) -> list[str]:
    forms = re.findall(rf'action="/cases/{re.escape(case_id)}/actions/([a-z_]+)"', page.text)
    if f'action="/cases/{case_id}/evidence"' in page.text:
        forms.append("upload")
    return sorted(forms)


@dataclass
class Pages:
    """One browser per person, all on one app."""

    services: Services
    browsers: dict[str, Browser]  # email -> signed-in browser
    evidence: dict[str, str]  # case id -> SHA-256 of the file uploaded to it

    def browser(self, email: str) -> Browser:
        return self.browsers[email]

    async def act(self, email: str, case_id: str, action: str, fields: dict[str, Any]) -> None:
        """An allowed action through its form: accepted (303 back to the case page)."""
        browser = self.browsers[email]
        page = await browser.get(f"/cases/{case_id}")
        assert action in offered(page, case_id), (email, action)
        # An irreversible action is sent from its confirmation page (confirmed=yes).
        form = {**as_form(fields), "confirmed": "yes"}
        done = await browser.post(f"/cases/{case_id}/actions/{action}", form)
        assert done.status_code == 303, (email, action, done.text[-2000:])
        assert done.headers["location"] == f"/cases/{case_id}"

    async def upload(self, email: str, case_id: str, content: bytes) -> httpx.Response:
        browser = self.browsers[email]
        return await browser.client.post(
            f"/cases/{case_id}/evidence",
            data={"csrf_token": browser.csrf, "description": "Screenshot"},
            files={"file": ("posts.pdf", content, "application/pdf")},
        )

    async def open_case(self, email: str, case_type: str, details: dict[str, Any]) -> str:
        """A case opened through the new-case form: its id."""
        browser = self.browsers[email]
        await browser.get(f"/cases/new/{case_type}")
        opened = await browser.post(f"/cases/new/{case_type}", as_form(details))
        assert opened.status_code == 303, opened.text[-2000:]
        return str(opened.headers["location"]).removeprefix("/cases/")

    # ---- the state refused posts must leave alone --------------------------------------

    async def state(self, case_id: str) -> tuple[Any, ...]:
        def read(session: Any) -> tuple[Any, ...]:
            case = session.get(Case, case_id)
            return (
                case.status,
                case.stage,
                case.outcome,
                case.assignee,
                case.details,
                case.parties,
                case.version,
            )

        return await self.services.run(read)

    async def events_after(self, case_id: str, seq: int) -> list[tuple[str, str, str]]:
        """(actor, kind, action) of each audit event after `seq`."""
        query = select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.seq > seq)
        rows = await self.services.run(lambda s: list(s.scalars(query)))
        return [(e.actor, e.kind, str(e.data.get("action", ""))) for e in rows]

    async def last_seq(self, case_id: str) -> int:
        query = select(func.max(CaseEvent.seq)).where(CaseEvent.case_id == case_id)
        found = await self.services.run(lambda s: s.scalar(query))
        return int(found or 0)

    async def cases_of(self, case_type: str) -> int:
        query = select(func.count()).select_from(Case).where(Case.type == case_type)
        found = await self.services.run(lambda s: s.scalar(query))
        return int(found or 0)


async def pages_for(services: Services, emails: Iterable[str]) -> AsyncIterator[Pages]:
    """Everyone in `emails` signed in to the pages, with their own token and cookies."""
    svc = page_services(services)
    app = create_app(lambda: nullcontext(svc))
    clients: list[httpx.AsyncClient] = []
    async with app.router.lifespan_context(app):
        browsers = {}
        for email in emails:
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
            clients.append(client)
            browsers[email] = Browser(client, svc.sessions)
            await browsers[email].sign_in(email)
        try:
            yield Pages(svc, browsers, {})
        finally:
            for client in clients:
                await client.aclose()


async def _too_large(browser: Browser, path: str) -> tuple[int, int]:
    """(status with Content-Length over the limit, status of the same sent in chunks)."""
    body = f"csrf_token={browser.csrf}&text=".encode() + b"x" * MAX_BODY
    declared = await browser.client.post(
        path, content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    chunked = await browser.client.post(
        path, content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    return declared.status_code, chunked.status_code


def refusals_to_post(table: Table, stage: str, refused_status: Any) -> set[tuple[str, str]]:
    """The refused action forms to POST at this stage: all of them where the case is
    hidden (404, answered before any work), else a covering sample, since each 403 or
    409 is a round trip to the workflow that the API's side of the table already makes
    for every cell: every person posts one form of each refusal they can meet (the
    action least posted so far), and every action refused here is posted by someone."""
    chosen: set[tuple[str, str]] = set()
    times: dict[str, int] = dict.fromkeys(table.rules.by_name, 0)
    for person in table.people:
        by_status: dict[int, list[str]] = {}
        for action in table.rules.by_name:
            if action not in table.may(stage, person):
                by_status.setdefault(refused_status(person, action), []).append(action)
        for status, actions in by_status.items():
            for action in actions if status == 404 else [min(actions, key=times.__getitem__)]:
                chosen.add((person, action))
                times[action] += 1
    for action, posted in times.items():
        refused_by = [p for p in table.people if action not in table.may(stage, p)]
        if not posted and refused_by:
            chosen.add((refused_by[0], action))
    return chosen


async def observe_pages(
    pages: Pages, table: Table, stage: str, case_id: str, refused_status: Any
) -> tuple[Observed, Observed]:
    """(what the table says, what the pages answered) for every person on this case now.

    `refused_status(person, action)` is the status the API owes for an action refused.
    """
    want: Observed = {}
    got: Observed = {}
    before = await pages.state(case_id)
    seq = await pages.last_seq(case_id)
    refused: list[tuple[str, str, str]] = []
    has_evidence = "add_evidence" in table.rules.by_name
    to_post = refusals_to_post(table, stage, refused_status)
    for person, actor in table.people.items():
        browser = pages.browser(actor.email)
        view = table.view(stage, person)
        allowed = table.may(stage, person)
        page = await browser.get(f"/cases/{case_id}")
        want[person, "page"] = view
        got[person, "page"] = page_view(page)
        listed = await browser.get("/", params={"view": "all", "q": case_id, "status": "any"})
        want[person, "my work"] = [case_id] if view else []
        got[person, "my work"] = re.findall(
            r'data-label="Case"><a class="govuk-link" href="/cases/([^"]+)">', listed.text
        )
        forms = sorted(allowed | ({"upload"} if "add_evidence" in allowed else set()))
        want[person, "forms"] = forms if view else []
        got[person, "forms"] = offered(page, case_id)
        for action in table.rules.by_name:
            path = f"/cases/{case_id}/actions/{action}"
            if action in allowed:
                # Would be accepted, but for the CSRF token or the size of the body.
                bare = await browser.client.post(path, data={"text": "x"})
                want[person, "no csrf", action] = (403, True)
                got[person, "no csrf", action] = (bare.status_code, CSRF_REFUSED in bare.text)
                want[person, "413", action] = (413, 413)
                got[person, "413", action] = await _too_large(browser, path)
                continue
            if (person, action) not in to_post:
                continue
            answer = await browser.post(path)
            want[person, "post", action] = refused_status(person, action)
            got[person, "post", action] = answer.status_code
            refused.append((actor.email, "refused", action))
        if has_evidence:
            path = f"/cases/{case_id}/evidence"
            if "add_evidence" in allowed:
                big = await pages.upload(actor.email, case_id, b"x" * (EVIDENCE_LIMIT + 1))
                want[person, "413", "upload"] = 413
                got[person, "413", "upload"] = big.status_code
            else:
                answer = await pages.upload(actor.email, case_id, EVIDENCE)
                want[person, "post", "upload"] = refused_status(person, "add_evidence")
                got[person, "post", "upload"] = answer.status_code
                refused.append((actor.email, "refused", "add_evidence"))
        if sha := pages.evidence.get(case_id):
            file = await browser.get(f"/cases/{case_id}/evidence/{sha}")
            want[person, "download"] = (200, EVIDENCE) if view == "whole" else (404, None)
            got[person, "download"] = (
                file.status_code,
                file.content if file.status_code == 200 else None,
            )
    # Refused, each recorded as a refusal and nothing else; the case as it was.
    people = {a.email for a in table.people.values()}
    after = await pages.events_after(case_id, seq)
    want["audit", "by people"] = sorted(refused)
    got["audit", "by people"] = sorted(e for e in after if e[0] in people)
    want["case", "state"] = before
    got["case", "state"] = await pages.state(case_id)
    return want, got


async def observe_new_case(
    pages: Pages, table: Table, case_type: str, details: dict[str, Any]
) -> tuple[Observed, Observed]:
    """The new-case pages as every person: the type offered, its form shown, and its
    form POSTed by whoever may not open one (403), or by whoever may without the CSRF
    token (403) or over the body limit (413): no case opened."""
    want: Observed = {}
    got: Observed = {}
    before = await pages.cases_of(case_type)
    for person, actor in table.people.items():
        browser = pages.browser(actor.email)
        may = table.may_open(person)
        choose = await browser.get("/cases/new")
        want[person, "new", "listed"] = may
        got[person, "new", "listed"] = f'href="/cases/new/{case_type}"' in choose.text
        form = await browser.get(f"/cases/new/{case_type}")
        want[person, "new", "form"] = 200 if may else 403
        got[person, "new", "form"] = form.status_code
        path = f"/cases/new/{case_type}"
        if may:
            # Would open a case, but for the CSRF token or the size of the body.
            bare = await browser.client.post(path, data=as_form(details))
            want[person, "new", "no csrf"] = (403, True)
            got[person, "new", "no csrf"] = (bare.status_code, CSRF_REFUSED in bare.text)
            want[person, "new", "413"] = (413, 413)
            got[person, "new", "413"] = await _too_large(browser, path)
        else:
            posted = await browser.post(path, as_form(details))
            want[person, "new", "post"] = 403
            got[person, "new", "post"] = posted.status_code
    want["new", "cases opened"] = before
    got["new", "cases opened"] = await pages.cases_of(case_type)
    return want, got


async def observe_dashboard_and_mail(pages: Pages, table: Table) -> tuple[Observed, Observed]:
    """The dashboard (team leads, auditors, administrators) and the mail page (one's own
    mail; all of it for auditors and administrators), as every person."""
    want: Observed = {}
    got: Observed = {}
    catcher = pages.services.settings.data_dir
    for _ in range(5):  # mail still arriving as the pages are read: read them again
        caught = list_messages(catcher)
        for person, actor in table.people.items():
            browser = pages.browser(actor.email)
            reads_board = any(r.endswith("_lead") or r in DASHBOARD_READERS for r in actor.roles)
            board = await browser.get("/dashboard")
            want[person, "dashboard"] = (200 if reads_board else 403, reads_board)
            got[person, "dashboard"] = (board.status_code, 'href="/dashboard"' in board.text)
            reads_all = bool(set(actor.roles) & set(READS_ALL_MAIL))
            mine = [m for m in caught if reads_all or actor.email in (a.lower() for a in m.to)]
            page = await browser.get("/mail")
            want[person, "mail"] = sorted(m.name for m in mine)
            got[person, "mail"] = sorted(set(re.findall(r'href="/mail/([^"]+)"', page.text)))
            others = [m for m in caught if m not in mine]
            if others:
                # Another's message, asked for by name: as if it did not exist.
                shown = await browser.get(f"/mail/{others[0].name}")
                want[person, "another's mail"] = 404
                got[person, "another's mail"] = shown.status_code
        if list_messages(catcher) == caught:
            break
    # The table tells apart one's own mail and everyone's only if some was not everyone's.
    assert any(want[p, "mail"] != sorted(m.name for m in caught) for p in table.people)
    return want, got
