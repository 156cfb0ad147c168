"""In a real browser: the API docs offline under the Content-Security-Policy, Back after
signing out, a form sent after its session ended in another tab, and the auditor's
page."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.async_api import ConsoleMessage, Page, Route, expect

from tests.web.conftest import Stack, shot
from tests.web.test_browser_dashboard_mail import IPA

# The one remote address ReDoc's bundle names: the small logo of its footer badge, refused
# by the policy's img-src before any request is made (nothing else is lost without it).
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


async def offline(page: Page, base_url: str) -> list[str]:
    """Refuse every request that leaves the server (as with no internet); the list
    collects those refused and every console complaint (a CSP refusal is one)."""
    trouble: list[str] = []
    local = urlsplit(base_url).netloc

    async def only_local(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == local or url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            trouble.append(f"left the server: {url}")
            await route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if REDOC_LOGO in message.text:
            return  # ReDoc's "API docs by Redocly" badge: the policy blocks it, as it should
        if message.type == "error" or "Content Security Policy" in message.text:
            trouble.append(f"console: {message.text}")

    await page.route("**/*", only_local)
    page.on("console", on_console)
    return trouble


async def test_the_api_docs_work_offline_under_the_policy(web: Stack) -> None:
    page = await web.page()
    trouble = await offline(page, web.base_url)
    await page.goto("/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Casework")
    await expect(page.locator(".opblock-summary-path").first).to_be_visible()
    await expect(page.get_by_text("/api/cases/{case_id}/actions").first).to_be_visible()
    await shot(page, "docs-swagger-ui")
    await page.goto("/redoc")
    await expect(page.get_by_role("heading", name=re.compile("Casework"))).to_be_visible()
    await expect(page.get_by_text("/api/cases/{case_id}/actions").first).to_be_attached()
    await shot(page, "docs-redoc")
    assert trouble == []


async def test_back_after_signing_out_shows_no_case(web: Stack) -> None:
    alex = await web.sign_in("alex", "/cases/new/ipa_approval")
    for name, value in IPA.items():
        control = alex.locator(f'[name="{name}"]')
        if await control.evaluate("c => c.tagName") == "SELECT":
            await control.select_option(value)
        else:
            await control.fill(value)
    await alex.get_by_role("button", name="Open the case").click()
    await alex.wait_for_url(re.compile(r"/cases/IPA-"))
    case_url = alex.url
    # What keeps it out of the browser's cache and its back/forward cache. (Headless
    # Chromium here asks the server again on Back even without it; a desktop browser
    # restores the page from its back/forward cache unless the page is no-store.)
    shown = await alex.reload()
    assert shown is not None and shown.headers["cache-control"] == "no-store"
    await expect(alex.get_by_text(IPA["justification"], exact=True).first).to_be_visible()
    await alex.get_by_role("button", name="Sign out").click()
    await alex.wait_for_url("**/signin")
    await alex.go_back()
    # Not kept by the browser: going back asks the server, which asks who you are.
    await expect(alex.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert "/signin?next=/cases/IPA-" in alex.url
    await expect(alex.get_by_text(IPA["justification"])).to_have_count(0)
    await shot(alex, "back-after-signing-out")
    assert case_url.endswith(alex.url.split("next=")[1])


async def test_a_form_sent_after_signing_out_in_another_tab(web: Stack) -> None:
    alex = await web.sign_in("alex", "/cases/new/ipa_approval")
    other_tab = await alex.context.new_page()
    await other_tab.goto("/")
    await other_tab.get_by_role("button", name="Sign out").click()
    await other_tab.wait_for_url("**/signin")

    await alex.locator('[name="handle"]').fill("@alex_kept")
    await alex.locator('[name="justification"]').fill("Typed before the session ended")
    await alex.get_by_role("button", name="Open the case").click()
    await alex.wait_for_url("**/signin?next=/cases/new/ipa_approval")
    await expect(alex.get_by_role("status")).to_contain_text("your form was not sent")
    await alex.get_by_label("Token").fill(web.token("alex"))
    await alex.get_by_role("button", name="Sign in").click()
    await alex.wait_for_url("**/cases/new/ipa_approval")
    await expect(alex.get_by_text("Your request was not sent")).to_be_visible()
    await expect(alex.locator('[name="justification"]')).to_have_value(
        "Typed before the session ended"
    )
    await expect(alex.locator('[name="handle"]')).to_have_value("@alex_kept")
    await shot(alex, "form-kept-after-sign-in")


async def test_an_auditor_checks_a_chain_from_the_pages(web: Stack) -> None:
    alex = await web.sign_in("alex", "/cases/new/ipa_approval")
    for name, value in IPA.items():
        control = alex.locator(f'[name="{name}"]')
        if await control.evaluate("c => c.tagName") == "SELECT":
            await control.select_option(value)
        else:
            await control.fill(value)
    await alex.get_by_role("button", name="Open the case").click()
    await alex.wait_for_url(re.compile(r"/cases/IPA-"))
    case_path = urlsplit(alex.url).path
    await expect(alex.get_by_text("Verify its audit trail")).to_have_count(0)

    ava = await web.sign_in("ava", case_path)
    await ava.get_by_role("link", name="Verify its audit trail and download its export").click()
    await expect(ava.get_by_role("status")).to_contain_text("The chain is intact")
    async with ava.expect_download() as download:
        await ava.get_by_role("link", name="Events as JSON Lines").click()
    saved = await download.value
    assert saved.suggested_filename == f"{case_path.rsplit('/', 1)[1]}-events.jsonl"
    await shot(ava, "audit-page")
