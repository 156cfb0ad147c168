"""The security headers of every answer (app.runtime.headers): pages, API, static files
and the offline API docs; `no-store` on all but static assets; no inline script."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from app.api.docs import REDOC, SWAGGER_UI
from app.service.auth import issue_token
from app.service.services import Services
from app.web.render import TEMPLATES_DIR
from tests.app.web.conftest import Browser

EMPLOYEE = "employee@dwp.gov.uk"
FIXED = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


def csp(response: httpx.Response) -> dict[str, str]:
    """The Content-Security-Policy as directive -> sources."""
    policy = response.headers["content-security-policy"]
    return {
        part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
        for part in (p.strip() for p in policy.split(";"))
        if part
    }


def assert_secured(response: httpx.Response, *, stored: bool) -> dict[str, str]:
    for name, value in FIXED.items():
        assert response.headers.get(name) == value, (response.url, name)
    policy = csp(response)
    assert policy["default-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    for directive in ("script-src", "default-src"):
        # No inline script, ever: neither 'unsafe-inline' nor 'unsafe-eval' for scripts.
        assert "unsafe" not in policy.get(directive, ""), (response.url, policy)
    cache = response.headers.get("cache-control", "")
    if stored:
        assert "no-store" not in cache, response.url
    else:
        assert cache == "no-store", (response.url, cache)
    return policy


async def test_every_kind_of_answer_carries_the_headers(
    offline_browser: Browser, offline_services: Services
) -> None:
    client = offline_browser.client
    # Signed out: the sign-in page, a redirect, a missing page.
    assert_secured(await offline_browser.get("/signin"), stored=False)
    assert_secured(await client.get("/"), stored=False)
    await offline_browser.sign_in(EMPLOYEE)
    # Signed-in pages, and a refused one.
    for path in ("/", "/cases/new", "/cases/IPA-2026-999999", "/no-such-page"):
        assert_secured(await offline_browser.get(path), stored=False)
    # The API: answers and refusals.
    with offline_services.sessions.begin() as session:
        token = issue_token(session, EMPLOYEE)
    bearer = {"Authorization": f"Bearer {token}"}
    me = await client.get("/api/me", headers=bearer)
    assert me.status_code == 200
    assert_secured(me, stored=False)
    assert_secured(await client.get("/api/me"), stored=False)  # 401
    assert_secured(await client.get("/api/cases", headers=bearer), stored=False)
    assert_secured(await client.get("/openapi.json"), stored=False)
    assert_secured(await client.get("/healthz"), stored=False)
    # Static assets may be cached, and are still framed by nothing.
    css = await client.get("/static/casework.css")
    assert css.status_code == 200
    assert_secured(css, stored=True)


async def test_after_signing_out_no_page_was_stored(offline_browser: Browser) -> None:
    """Back after signing out finds nothing in the cache: every signed-in page was no-store."""
    await offline_browser.sign_in(EMPLOYEE)
    page = await offline_browser.get("/")
    assert page.status_code == 200 and "Signed in as" in page.text
    assert page.headers["cache-control"] == "no-store"
    await offline_browser.post("/signout")
    assert (await offline_browser.get("/")).status_code == 303


async def test_the_api_docs_are_served_offline_under_the_policy(
    offline_browser: Browser,
) -> None:
    client = offline_browser.client
    docs = await client.get("/docs")
    assert docs.status_code == 200, docs.text
    assert_secured(docs, stored=False)
    redoc = await client.get("/redoc")
    assert redoc.status_code == 200
    policy = assert_secured(redoc, stored=False)
    # ReDoc styles itself inline: allowed on its own route only.
    assert "'unsafe-inline'" in policy["style-src"]
    assert "style-src" not in csp(docs)
    for page in (docs, redoc):
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/") for s in sources), sources  # nothing remote
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text)  # no inline script
        for source in sources:
            if source == "/openapi.json":
                continue
            asset = await client.get(source)
            assert asset.status_code == 200, source
            assert_secured(asset, stored=True)
    assert (SWAGGER_UI / "swagger-ui-bundle.js").is_file()
    assert (REDOC / "redoc.standalone.js").is_file()
    # The Swagger UI that reads OpenAPI 3.1 (the wheel of swagger-ui-bundle did not).
    openapi = (await client.get("/openapi.json")).json()
    assert openapi["openapi"].startswith("3.1")
    version = re.search(r'"version":\s*"(\d+)\.', (SWAGGER_UI / "package.json").read_text())
    assert version and int(version.group(1)) >= 5


def test_no_template_has_inline_script_or_handlers() -> None:
    """The policy forbids inline script; the pages must not depend on any."""
    for path in Path(TEMPLATES_DIR).rglob("*.html"):
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\son[a-z]+\s*=", html), path
        assert "javascript:" not in html, path
