"""A form sent after its sign-in ended (app.web.resume): nothing is done, the person
signs in again and lands back on the page, the form filled in as they typed it; only for
a form of this browser's sign-in (CSRF), only for the same person; `next` stays local."""

from __future__ import annotations

import re

import httpx

from app import service
from app.service.auth import issue_token, revoke_token
from app.service.services import Services
from app.web.resume import COOKIE
from tests.app.web.conftest import Browser
from tests.app.web.test_pages_cases import IPA_FORM, Open, as_person, open_ipa
from workflows.common import Actor

EMPLOYEE, MANAGER = "employee@dwp.gov.uk", "manager@dwp.gov.uk"
NEW_IPA = "/cases/new/ipa_approval"


async def sign_in_by_form(browser: Browser, email: str, next_path: str) -> httpx.Response:
    with browser.sessions.begin() as session:
        token = issue_token(session, email)
    await browser.get(f"/signin?next={next_path}")
    return await browser.post("/signin", {"token": token, "next": next_path})


def value_of(page: httpx.Response, name: str) -> str:
    match = re.search(rf'<textarea [^>]*\bname="{name}"[^>]*>([^<]*)</textarea>', page.text)
    if match:
        return match.group(1)
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page.text)
    assert match, f"no field {name}"
    return match.group(1)


async def stale_post(browser: Browser, path: str, csrf: str, **fields: str) -> httpx.Response:
    return await browser.client.post(path, data={"csrf_token": csrf, **fields})


async def test_a_request_typed_as_the_session_ended_survives_signing_in(
    offline_browser: Browser,
) -> None:
    await offline_browser.sign_in(EMPLOYEE)
    await offline_browser.get(NEW_IPA)
    typed_on = offline_browser.csrf
    await offline_browser.post("/signout")  # in another tab

    sent = await stale_post(offline_browser, NEW_IPA, typed_on, **IPA_FORM)
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/signin?next={NEW_IPA}"
    assert offline_browser.client.cookies.get(COOKIE)
    signin = await offline_browser.get(sent.headers["location"])
    assert "your form was not sent" in signin.text

    back = await sign_in_by_form(offline_browser, EMPLOYEE, NEW_IPA)
    assert back.headers["location"] == NEW_IPA  # to the form, not My work
    page = await offline_browser.get(NEW_IPA)
    assert "Your request was not sent" in page.text
    assert value_of(page, "justification") == IPA_FORM["justification"]
    assert value_of(page, "handle") == IPA_FORM["handle"]
    assert offline_browser.csrf != typed_on  # sent again, it carries the new sign-in's token
    assert not offline_browser.client.cookies.get(COOKIE)  # read once
    again = await offline_browser.get(NEW_IPA)
    assert "was not sent" not in again.text


async def test_a_revoked_token_keeps_the_typed_form_too(
    offline_browser: Browser, offline_services: Services
) -> None:
    with offline_services.sessions.begin() as session:
        token = issue_token(session, EMPLOYEE)
    await offline_browser.get("/signin")
    await offline_browser.post("/signin", {"token": token, "next": "/"})
    await offline_browser.get(NEW_IPA)
    with offline_services.sessions.begin() as session:
        revoke_token(session, token)
    sent = await stale_post(offline_browser, NEW_IPA, offline_browser.csrf, **IPA_FORM)
    assert sent.headers["location"] == f"/signin?next={NEW_IPA}"
    assert offline_browser.client.cookies.get(COOKIE)


async def test_a_form_from_elsewhere_is_not_kept(offline_browser: Browser) -> None:
    await offline_browser.sign_in(EMPLOYEE)
    await offline_browser.post("/signout")
    for csrf in ("forged", ""):
        sent = await stale_post(offline_browser, NEW_IPA, csrf, **IPA_FORM)
        assert sent.status_code == 303  # still sent to sign in, back to the form
        assert sent.headers["location"] == f"/signin?next={NEW_IPA}"
        assert not offline_browser.client.cookies.get(COOKIE)
    # No session at all (another site's post: SameSite=Lax sends no cookie).
    offline_browser.client.cookies.clear()
    sent = await stale_post(offline_browser, NEW_IPA, "x", **IPA_FORM)
    assert sent.status_code == 303 and not offline_browser.client.cookies.get(COOKIE)


async def test_someone_else_signing_in_never_sees_it(offline_browser: Browser) -> None:
    await offline_browser.sign_in(EMPLOYEE)
    await offline_browser.get(NEW_IPA)
    typed_on = offline_browser.csrf
    await offline_browser.post("/signout")
    await stale_post(offline_browser, NEW_IPA, typed_on, **IPA_FORM)
    assert offline_browser.client.cookies.get(COOKIE)
    await sign_in_by_form(offline_browser, "officer@dwp.gov.uk", NEW_IPA)
    page = await offline_browser.get(NEW_IPA)
    assert "was not sent" not in page.text and IPA_FORM["justification"] not in page.text
    assert not offline_browser.client.cookies.get(COOKIE)  # dropped


async def test_next_is_always_a_local_path(offline_browser: Browser) -> None:
    with offline_browser.sessions.begin() as session:
        tokens = [issue_token(session, EMPLOYEE) for _ in range(5)]
    for token, where in zip(
        tokens,
        ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x", ""),
        strict=True,
    ):
        offline_browser.client.cookies.clear()
        await offline_browser.get("/signin")
        response = await offline_browser.post("/signin", {"token": token, "next": where})
        assert response.status_code == 303
        assert response.headers["location"] == "/", where


async def test_a_case_action_typed_as_the_session_ended_comes_back_on_the_case(
    browser_factory: Open, services: Services
) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    case_id = await open_ipa(employee)
    manager = await as_person(browser_factory, MANAGER)
    await manager.get(f"/cases/{case_id}")
    typed_on = manager.csrf
    await manager.post("/signout")  # another tab

    reason = "Not for this team <b>yet</b>"
    sent = await stale_post(manager, f"/cases/{case_id}/actions/decline", typed_on, reason=reason)
    assert sent.headers["location"] == f"/signin?next=/cases/{case_id}"
    back = await sign_in_by_form(manager, MANAGER, f"/cases/{case_id}")
    assert back.headers["location"] == f"/cases/{case_id}"
    page = await manager.get(f"/cases/{case_id}")
    assert "Decline was not sent" in page.text
    assert value_of(page, "reason") == "Not for this team &lt;b&gt;yet&lt;/b&gt;"
    case = await service.get_case(services, actor=Actor(MANAGER, []), case_id=case_id)
    assert case["stage"] == "manager_endorsement"  # nothing was done meanwhile

    # Declining cannot be undone: sent from its confirmation page (confirmed=yes).
    asked = await manager.post(f"/cases/{case_id}/actions/decline", {"reason": reason})
    assert asked.status_code == 200 and "Are you sure you want to decline" in asked.text
    declined = await manager.post(
        f"/cases/{case_id}/actions/decline", {"reason": reason, "confirmed": "yes"}
    )
    assert declined.status_code == 303
    case = await service.get_case(services, actor=Actor(MANAGER, []), case_id=case_id)
    assert case["status"] == "closed"
