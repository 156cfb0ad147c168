"""The pages of issue 14 in a real browser, axe-core on every page (tests/web/conftest.py):
the queue on a 390 px phone without sideways scrolling, its columns sorted by MOJ
Frontend's sortable table, the timeline's system mail folded away, a SAC lead told why
they may not decide what they assessed, a confirmation before a decision, and a page
opened before the case moved on answered with what changed. And that axe bites."""

from __future__ import annotations

from playwright.async_api import expect

from app import service
from tests.web.conftest import PEOPLE, Document, Stack, shot
from tests.web.test_browser_journeys import action, current_stage, take
from workflows.common import Actor

PHONE = 390
IPA = {
    "account_kind": "linkedin",
    "platform": "LinkedIn",
    "handle": "alex-turner",
    "justification": "Recruitment events for the department",
    "device": "dwp_managed",
    "contact_email": "alex@example.com",
}
PEX = {
    "policy_section": "5.1",
    "requirement": "A personal phone for out-of-hours posts",
    "justification": "Press office rota",
    "risk": "Loss of the phone",
    "compensating_controls": "Device PIN and remote wipe",
    "duration_days": 90,
}


def person(who: str, *roles: str) -> Actor:
    return Actor(PEOPLE[who], list(roles))


async def endorsed_ipa(web: Stack) -> str:
    """An IPA of Alex's, endorsed by Morgan: in the SAC queue."""
    case = await service.open_case(
        web.services, actor=person("alex"), case_type="ipa_approval", details=IPA
    )
    await service.act(
        web.services, actor=person("morgan"), case_id=case["id"], action="endorse", fields={}
    )
    return str(case["id"])


async def test_the_queue_fits_a_phone_and_sorts_by_its_columns(web: Stack) -> None:
    case_ids = [await endorsed_ipa(web) for _ in range(2)]
    sam = await web.sign_in("sam", "/?view=team-sac", width=PHONE)
    await expect(sam.get_by_role("link", name=case_ids[0])).to_be_visible()
    await expect(sam.get_by_text("Alex Turner").first).to_be_visible()  # the requester, named
    wide = await sam.evaluate("document.documentElement.scrollWidth")
    assert wide <= PHONE, f"the queue is {wide} px wide on a {PHONE} px phone"
    await shot(sam, "phone-queue-sam")

    wide_sam = await web.sign_in("sam", "/?view=team-sac")
    header = wide_sam.get_by_role("columnheader", name="Case")
    await header.get_by_role("button").click()  # MOJ Frontend's sortable table
    await expect(header).to_have_attribute("aria-sort", "ascending")
    await header.get_by_role("button").click()
    await expect(header).to_have_attribute("aria-sort", "descending")
    first = wide_sam.locator("tbody tr").first.get_by_role("link")
    await expect(first).to_have_text(max(case_ids))


async def test_a_decision_is_confirmed_and_a_stale_page_says_what_changed(web: Stack) -> None:
    case_id = await endorsed_ipa(web)
    sam = await web.sign_in("sam", f"/cases/{case_id}")
    lee = await web.sign_in("lee", f"/cases/{case_id}")
    # The timeline in people's words, the system's mail folded away (tests/app/web).
    timeline = lee.locator(".moj-timeline")
    await expect(timeline).to_contain_text("LinkedIn")
    await expect(timeline).to_contain_text("DWP managed")
    await expect(timeline).to_contain_text("by Morgan Patel (morgan.manager@dwp.gov.uk)")
    await expect(timeline).not_to_contain_text("Message")

    await take(lee, "Approve")  # asks first, on a page of its own
    await expect(lee.get_by_role("heading", level=1)).to_have_text(
        "Are you sure you want to approve this IPA approval?"
    )
    await shot(lee, "confirm-approve-lee")
    await lee.get_by_role("link", name="No, go back").click()
    await expect(current_stage(lee)).to_contain_text("SAC review")  # nothing was sent
    await take(lee, "Approve", confirm=True)
    await expect(lee.get_by_role("status")).to_contain_text("now at the active stage")

    # Sam's page still shows SAC review: rejecting from it says what happened meanwhile.
    reject = action(sam, "Reject")
    await reject.get_by_label("Reason").fill("Too risky")
    await take(sam, "Reject")
    await expect(sam.get_by_role("alert")).to_contain_text(
        "This case moved to Active since you opened the page."
    )
    await expect(sam.get_by_role("alert")).not_to_contain_text("not allowed in stage")
    await shot(sam, "stale-page-sam")


async def test_a_sac_lead_is_told_why_they_may_not_decide_what_they_assessed(web: Stack) -> None:
    case = await service.open_case(
        web.services, actor=person("alex"), case_type="policy_exception", details=PEX
    )
    case_id = case["id"]
    lee = await web.sign_in("lee", f"/cases/{case_id}")
    await take(lee, "Accept")
    assess = action(lee, "Submit the risk assessment")
    await assess.get_by_label("Risk rating").select_option("low")
    await assess.get_by_label("Assessment").fill("The controls suffice")
    await take(lee, "Submit the risk assessment")
    await expect(current_stage(lee)).to_contain_text("Decision")
    await expect(action(lee, "Approve")).to_have_count(0)
    await expect(lee.locator(".casework-not-yours")).to_contain_text(
        "Approve: You assessed this policy exception; another SAC lead must approve it "
        "(four eyes, policy 5.2)."
    )
    await shot(lee, "four-eyes-reason-lee")


async def test_axe_finds_what_breaks_wcag(web: Stack) -> None:
    """The check bites: a page without a language, a title or an image's text fails."""
    url = f"{web.base_url}/not-a-page-axe-checks"
    bad = b"<!doctype html><html><body><img src='/assets/images/favicon.svg'></body></html>"
    web.documents.append(Document(url, 200, {"content-type": "text/html"}, bad))
    found = await web.check_accessibility()
    for rule in ("html-has-lang", "document-title", "image-alt"):
        assert any(f'"id": "{rule}"' in line for line in found), (rule, found)
