"""Signing in and out of the pages, the session cookie, and CSRF refusals."""

from __future__ import annotations

from tests.app.web.conftest import Browser

EMPLOYEE = "employee@dwp.gov.uk"


async def test_pages_ask_who_you_are_first(offline_browser: Browser) -> None:
    response = await offline_browser.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/"
    page = await offline_browser.get("/signin")
    assert page.status_code == 200
    assert '<label for="token">Token</label>' in page.text


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
