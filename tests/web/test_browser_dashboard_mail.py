"""In a real browser: the dashboard and the mail page as a new user meets them, a
forbidden page, and a form posted without its CSRF token."""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import expect

from app import service
from models import Case
from tests.web.conftest import PEOPLE, Stack, eventually, shot

IPA = {
    "account_kind": "individual_professional",
    "platform": "X",
    "handle": "@alex_at_work",
    "justification": "Recruitment events for the department",
    "device": "dwp_managed",
    "contact_email": "alex@example.com",
}


async def test_signing_in_with_a_token(web: Stack) -> None:
    page = await web.page()
    await page.goto("/dashboard")
    await page.wait_for_url("**/signin?next=/dashboard")
    await page.get_by_label("Token").fill("not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator(".govuk-error-message")).to_contain_text("token")
    await shot(page, "signin-refused")
    await page.get_by_label("Token").fill(web.token("lee"))
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/dashboard")
    await expect(page.get_by_role("navigation", name="Main")).to_contain_text("Dashboard")


async def test_the_dashboard_is_forbidden_to_an_employee(web: Stack) -> None:
    page = await web.sign_in("alex")
    nav = page.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link", name="My work")).to_be_visible()
    await expect(nav.get_by_role("link", name="Dashboard")).to_have_count(0)
    response = await page.goto("/dashboard")
    assert response is not None and response.status == 403
    await expect(page.get_by_role("heading", level=1)).to_have_text("You may not do that")
    await expect(page.get_by_role("alert")).to_contain_text("team leads, auditors")
    await shot(page, "forbidden-dashboard")


async def test_a_form_posted_without_its_csrf_token_is_refused(web: Stack) -> None:
    page = await web.sign_in("alex")
    # The same browser, cookies and all, posting as another site's form would.
    refused = await page.context.request.post(f"{web.base_url}/signout", form={"x": "1"})
    assert refused.status == 403
    assert "did not come from this sign-in" in await refused.text()
    await page.goto("/")
    assert "/signin" not in page.url  # still signed in: the sign-out did not happen
    await expect(page.get_by_text("Signed in as Alex Turner")).to_be_visible()
    # The page's own form, its token taken out, is refused the same way.
    await page.locator('form[action="/signout"] input[name="csrf_token"]').evaluate(
        "input => input.remove()"
    )
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("You may not do that")
    await expect(page.get_by_role("alert")).to_contain_text("did not come from this sign-in")
    await shot(page, "csrf-refused")
    await page.goto("/")
    await expect(page.get_by_text("Signed in as Alex Turner")).to_be_visible()


async def test_an_overdue_request_shows_on_the_dashboard_and_in_the_mail(web: Stack) -> None:
    alex = await service.actor_for(web.services, email=PEOPLE["alex"])
    case = await service.open_case(web.services, actor=alex, case_type="ipa_approval", details=IPA)
    case_id = case["id"]
    # Morgan never endorses it: ten days on (time-skipping server), it is overdue and
    # has been escalated to Harper, Morgan's manager.
    await web.env.sleep(timedelta(days=10))

    def escalated_to_harper() -> bool:
        return any(
            PEOPLE["harper"] in m.to and m.subject.startswith(f"Overdue: {case_id}")
            for m in web.mail()
        )

    await eventually(escalated_to_harper)

    def overdue_in_the_read_model() -> bool:
        with web.services.sessions() as session:
            row = session.get(Case, case_id)
            return row is not None and row.overdue

    await eventually(overdue_in_the_read_model)

    # Lee, the SAC lead, sees it among the SAC's overdue cases, charted and tabled.
    lee = await web.sign_in("lee", "/dashboard")
    await expect(lee.get_by_role("heading", level=1)).to_have_text("Dashboard")
    await expect(lee.get_by_label("Team")).to_have_value("sac")
    overdue = lee.locator("section", has=lee.get_by_role("heading", name="Overdue now"))
    await expect(overdue.get_by_role("link", name=case_id)).to_be_visible()
    chart = lee.get_by_role("img", name="Overdue cases by escalation level")
    await expect(chart).to_be_visible()
    for name in ("Open cases by type and stage", "Open cases by age"):
        await expect(lee.get_by_role("img", name=name)).to_be_visible()
    await lee.get_by_text("Open cases by type and stage as a table").click()
    await expect(lee.get_by_role("cell", name="Manager endorsement").first).to_be_visible()
    await shot(lee, "dashboard-sac-lead")
    await overdue.get_by_role("link", name=case_id).click()
    await lee.wait_for_url(f"**/cases/{case_id}")

    # Ava, the auditor, starts on every team's figures and may pick one.
    ava = await web.sign_in("ava", "/dashboard")
    await expect(ava.get_by_label("Team")).to_have_value("all")
    await ava.get_by_label("Team").select_option("sirt")
    await ava.get_by_role("button", name="Show").click()
    await ava.wait_for_url("**/dashboard?team=sirt*")
    await expect(ava.get_by_role("heading", name="Overdue now")).to_contain_text("Overdue now")
    await shot(ava, "dashboard-auditor-sirt")

    # Harper reads the escalation on the mail page; not the mail sent to Alex.
    harper = await web.sign_in("harper", "/mail")
    await expect(harper.get_by_text("only the messages addressed to you")).to_be_visible()
    await expect(harper.get_by_role("link", name=f"Case {case_id} opened")).to_have_count(0)
    await shot(harper, "mail-list-harper")
    await harper.get_by_role("link", name=f"Overdue: {case_id}").first.click()
    await expect(harper.get_by_role("heading", level=1)).to_contain_text(f"Overdue: {case_id}")
    await expect(harper.locator("pre.mail-text")).to_contain_text(case_id)
    # The HTML part, in a frame that may run no script and reach nothing of the page.
    assert await harper.locator("iframe.mail-html").get_attribute("sandbox") == ""
    html_part = harper.frame_locator("iframe.mail-html").locator("body")
    await expect(html_part).to_contain_text(case_id)
    await shot(harper, "mail-message-harper")
    await shot(harper.locator("iframe.mail-html"), "mail-message-harper-formatted")
    mine = harper.url.rsplit("/", 1)[1]

    # Alex sees the opening mail, and cannot open Harper's message by its address.
    alex_page = await web.sign_in("alex", "/mail")
    await expect(alex_page.get_by_role("link", name=f"Case {case_id} opened")).to_be_visible()
    response = await alex_page.goto(f"/mail/{mine}")
    assert response is not None and response.status == 404
    response = await alex_page.goto("/mail/..%2F..%2Fcasework.db")
    assert response is not None and response.status == 404

    # Ali, the administrator, sees all of it.
    ali = await web.sign_in("ali", "/mail")
    await expect(ali.get_by_text("you see every message")).to_be_visible()
    await expect(ali.get_by_role("link", name=f"Case {case_id} opened")).to_be_visible()
    await expect(ali.get_by_role("link", name=f"Overdue: {case_id}").first).to_be_visible()
    await shot(ali, "mail-list-admin")
