"""Signing in and out of the pages, the session cookie, and CSRF refusals."""

from __future__ import annotations

import json
import time
from base64 import b64decode, b64encode
from contextlib import nullcontext
from dataclasses import replace
from typing import cast

import httpx
import pytest
from itsdangerous import TimestampSigner

from app.platform.settings import Settings
from app.runtime.webapp import create_app
from app.service.auth import issue_token, revoke_token
from app.service.services import Services
from app.web.session import secret_key
from tests.app.conftest import NoTemporal
from tests.app.web.conftest import Browser, _app_client

EMPLOYEE = "employee@dwp.gov.uk"


# The cookie as Starlette's SessionMiddleware writes it: base64 JSON, signed with a time.
def sign(data: dict[str, object], key: bytes) -> str:
    return TimestampSigner(key).sign(b64encode(json.dumps(data).encode("utf-8"))).decode()


def unsign(value: str, key: bytes) -> dict[str, object]:
    data: dict[str, object] = json.loads(b64decode(TimestampSigner(key).unsign(value)))
    return data


async def test_pages_ask_who_you_are_first(offline_browser: Browser) -> None:
    response = await offline_browser.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/"
    page = await offline_browser.get("/signin")
    assert page.status_code == 200
    assert '<label class="govuk-label govuk-label--s" for="token">' in page.text


async def test_sign_in_with_a_token_then_out(offline_browser: Browser) -> None:
    await offline_browser.sign_in(EMPLOYEE)
    cookie = offline_browser.client.cookies.get("casework_session")
    assert cookie
    home = await offline_browser.get("/")
    assert home.status_code == 200, home.text
    assert "Signed in as Employee" in home.text

    out = await offline_browser.post("/signout")
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert (await offline_browser.get("/")).status_code == 303


async def test_a_bad_token_is_refused_beside_the_field(offline_browser: Browser) -> None:
    await offline_browser.get("/signin")
    page = await offline_browser.post("/signin", {"token": "not-a-token", "next": "/"})
    assert page.status_code == 401
    assert "That token is unknown or has been revoked" in page.text
    assert "govuk-input--error" in page.text and 'href="#token"' in page.text
    assert (await offline_browser.get("/")).status_code == 303


async def test_forms_without_this_sessions_csrf_token_are_refused(
    offline_browser: Browser, offline_services: Services
) -> None:
    await offline_browser.sign_in(EMPLOYEE)
    client = offline_browser.client
    for token in (None, "", "forged-token", offline_browser.csrf + "x"):
        data = {"text": "hello"} if token is None else {"text": "hello", "csrf_token": token}
        refused = await client.post("/cases/IPA-2026-000001/actions/comment", data=data)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
        assert "this form did not come from this sign-in" in refused.text
    # Signing out needs the token too, so another site cannot sign anyone out.
    assert (await client.post("/signout", data={})).status_code == 403
    assert (await offline_browser.get("/")).status_code == 200
    # Refused before reaching the service: Temporal was never asked.
    assert cast(NoTemporal, offline_services.client).calls == []


async def test_signing_in_needs_the_token_of_the_sign_in_page(offline_browser: Browser) -> None:
    with offline_browser.sessions.begin() as session:
        token = issue_token(session, EMPLOYEE)
    page = await offline_browser.client.post("/signin", data={"token": token})
    assert page.status_code == 403
    assert (await offline_browser.get("/")).status_code == 303


async def test_the_session_cookie_cannot_be_forged(offline_browser: Browser) -> None:
    await offline_browser.sign_in(EMPLOYEE)
    cookie = offline_browser.client.cookies["casework_session"]
    payload, _, mac = cookie.partition(".")
    key = secret_key(settings_of(offline_browser))
    assert unsign(cookie, key)["email"] == EMPLOYEE
    forged = sign({**unsign(cookie, key), "email": "ceo@dwp.gov.uk"}, b"another key" * 4)
    offline_browser.client.cookies.clear()
    offline_browser.client.cookies.set("casework_session", forged)
    assert (await offline_browser.get("/")).status_code == 303
    offline_browser.client.cookies.set("casework_session", payload + "." + mac[::-1])
    assert (await offline_browser.get("/")).status_code == 303


async def test_a_sign_in_lasts_twelve_hours_however_busy_its_session(
    offline_browser: Browser,
) -> None:
    await offline_browser.sign_in(EMPLOYEE)
    key = secret_key(settings_of(offline_browser))
    session = unsign(offline_browser.client.cookies["casework_session"], key)
    assert (await offline_browser.get("/")).status_code == 200
    stale = {**session, "at": int(time.time()) - 12 * 3600 - 60}  # a fresh cookie, an old sign-in
    offline_browser.client.cookies.clear()
    offline_browser.client.cookies.set("casework_session", sign(stale, key))
    assert (await offline_browser.get("/")).status_code == 303


def settings_of(browser: Browser) -> Settings:
    transport = browser.client._transport
    assert isinstance(transport, httpx.ASGITransport)
    services: Services = transport.app.state.services  # type: ignore[attr-defined]
    return services.settings


async def test_cookie_flags_and_the_key_kept_in_the_data_directory(
    offline_services: Services,
) -> None:
    https = offline_services.settings.model_copy(update={"base_url": "https://casework.example"})
    async for client in _app_client(replace(offline_services, settings=https)):
        page = await client.get("/signin")
        cookie = page.headers["set-cookie"]
        flags = cookie.lower()  # attribute names are case-insensitive (RFC 6265)
        assert "httponly" in flags and "samesite=lax" in flags and "secure" in flags
    key_file = https.data_dir / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert secret_key(https) == key_file.read_bytes().strip()
    assert secret_key(https.model_copy(update={"secret_key": "k" * 32})) == b"k" * 32


async def test_a_trusted_header_from_an_sso_proxy_signs_people_in(
    offline_services: Services,
) -> None:
    behind_proxy = offline_services.settings.model_copy(
        update={"trusted_user_header": "x-remote-user"}
    )
    async for client in _app_client(replace(offline_services, settings=behind_proxy)):
        page = await client.get("/", headers={"X-Remote-User": "Employee@dwp.gov.uk"})
        assert page.status_code == 200 and "Signed in as Employee" in page.text
        stranger = await client.get("/", headers={"X-Remote-User": "nobody@dwp.gov.uk"})
        assert stranger.status_code == 403
        assert (await client.get("/")).status_code == 303
    # Off by default: the same header signs no one in.
    async for client in _app_client(offline_services):
        ignored = await client.get("/", headers={"X-Remote-User": EMPLOYEE})
        assert ignored.status_code == 303


async def test_api_paths_keep_their_json_errors_while_pages_answer_html(
    offline_browser: Browser,
) -> None:
    client = offline_browser.client
    api = await client.get("/api/nope")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    unauthorised = await client.get("/api/me")
    assert unauthorised.status_code == 401 and "error" in unauthorised.json()
    page = await client.get("/nope")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert '<h1 class="govuk-heading-l">Page not found</h1>' in page.text


async def test_signing_in_returns_to_the_page_asked_for_on_this_site_only(
    offline_browser: Browser,
) -> None:
    asked = await offline_browser.get("/cases/new/ipa_approval")
    assert asked.headers["location"] == "/signin?next=/cases/new/ipa_approval"
    with offline_browser.sessions.begin() as session:
        token = issue_token(session, EMPLOYEE)
    await offline_browser.get("/signin?next=/cases/new/ipa_approval")
    back = await offline_browser.post(
        "/signin", {"token": token, "next": "/cases/new/ipa_approval"}
    )
    assert back.headers["location"] == "/cases/new/ipa_approval"
    for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        await offline_browser.get("/")  # signing in made a new CSRF token: read it
        assert (await offline_browser.post("/signout")).status_code == 303
        await offline_browser.get("/signin")
        away = await offline_browser.post("/signin", {"token": token, "next": elsewhere})
        assert away.headers["location"] == "/", elsewhere


async def test_a_missing_page_keeps_the_navigation_of_whoever_is_signed_in(
    offline_browser: Browser,
) -> None:
    await offline_browser.sign_in(EMPLOYEE)
    page = await offline_browser.get("/no/such/page")
    assert page.status_code == 404 and "There is no page at /no/such/page." in page.text
    assert "Signed in as Employee" in page.text and 'action="/signout"' in page.text
    wrong_method = await offline_browser.client.get("/signout")
    assert wrong_method.status_code == 405 and "GET is not allowed here." in wrong_method.text


async def test_revoking_the_token_signs_its_sessions_out(offline_browser: Browser) -> None:
    with offline_browser.sessions.begin() as session:
        token = issue_token(session, EMPLOYEE)
    await offline_browser.get("/signin")
    assert (await offline_browser.post("/signin", {"token": token})).status_code == 303
    assert (await offline_browser.get("/")).status_code == 200
    with offline_browser.sessions.begin() as session:
        assert revoke_token(session, token)
    assert (await offline_browser.get("/")).status_code == 303


async def test_an_unexpected_failure_is_a_page_and_a_log_line(
    offline_services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """Temporal failing (here: a client that fails any call) is no refusal: the person
    gets a plain 500 page, the log the traceback."""
    app = create_app(lambda: nullcontext(offline_services))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://casework.test") as client,
    ):
        browser = Browser(client, offline_services.sessions)
        await browser.sign_in(EMPLOYEE)
        await browser.get("/cases/new/ipa_approval")
        form = {
            "account_kind": "official",
            "platform": "X",
            "handle": "@dwp",
            "justification": "News",
            "device": "dwp_managed",
            "contact_email": "press@example.com",
        }
        page = await browser.post("/cases/new/ipa_approval", form)
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "the server log has the details" in page.text
    assert any(
        "unhandled error on POST /cases/new/ipa_approval" in r.message for r in caplog.records
    )
