"""Whole journeys clicked through in a real browser, each person signed in as themselves:
an IPA request (Alex opens, Morgan endorses, Sam approves) and an abuse investigation
(Jordan reports, Jo investigates, Robin closes), with refusals shown inline."""

from __future__ import annotations

import re

from playwright.async_api import Locator, Page, expect

from tests.today import london_date
from tests.web.conftest import Stack, shot


def action(page: Page, label: str) -> Locator:
    """The form of one action on a case page (named by its heading)."""
    return page.get_by_role("form", name=re.compile(rf"^{re.escape(label)}"))


async def take(page: Page, label: str, *, confirm: bool = False) -> None:
    """Press an action's button; an irreversible one (`confirm`) asks on a page of its
    own first, and is sent from there."""
    await action(page, label).get_by_role("button", name=label, exact=True).click()
    if confirm:
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Are you sure")
        await expect(page.get_by_text("cannot be undone")).to_be_visible()
        await page.get_by_role("button", name=f"Yes, {label.lower()}").click()


def current_stage(page: Page) -> Locator:
    return page.locator('.stages [aria-current="step"]')


async def test_an_ipa_request_from_alex_endorsed_by_morgan_approved_by_sam(web: Stack) -> None:
    alex = await web.sign_in("alex")
    await shot(alex, "ipa-01-my-work-alex")
    await alex.get_by_role("link", name="New case").click()
    await expect(alex.get_by_role("heading", level=1)).to_have_text("Start a new case")
    await shot(alex, "ipa-02-new-case-types")
    await alex.get_by_role("link", name="IPA approval").click()

    # First a request the policy refuses: a personal account needs no approval (5.1).
    await alex.get_by_label("Account kind").select_option("personal")
    await alex.get_by_label("Platform").fill("Instagram")
    await alex.get_by_label("Handle").fill("@alex_at_home")
    await alex.get_by_label("Justification").fill("Keeping in touch with friends")
    await alex.get_by_label("Device").select_option("personal")
    await alex.get_by_label("Contact email").fill("alex@example.com")
    await alex.get_by_role("button", name="Open the case").click()
    await expect(alex.get_by_role("alert")).to_contain_text("This request cannot be opened")
    await expect(alex.get_by_role("alert")).to_contain_text("5.1")
    kind = alex.get_by_label("Account kind")
    await expect(kind).to_have_class(re.compile(r"govuk-select--error"))
    await expect(alex.locator(".govuk-form-group--error .govuk-error-message")).to_contain_text(
        "5.1"
    )
    # The error summary's link takes the person to the field.
    await alex.get_by_role("alert").get_by_role("link").first.click()
    await expect(kind).to_be_focused()
    await expect(alex.get_by_label("Handle")).to_have_value("@alex_at_home")  # kept as typed
    await shot(alex, "ipa-03-refused-at-intake")

    await kind.select_option("individual_professional")
    await alex.get_by_label("Platform").fill("X")
    await alex.get_by_label("Handle").fill("@alex_dwp")
    await alex.get_by_label("Justification").fill("Recruitment events for the department")
    await alex.get_by_label("Device").select_option("dwp_managed")
    await alex.get_by_role("button", name="Open the case").click()
    await alex.wait_for_url(re.compile(r"/cases/IPA-\d{4}-\d{6}$"))
    case_id = alex.url.rsplit("/", 1)[1]
    await expect(alex.get_by_role("status")).to_contain_text(f"Opened {case_id}")
    await expect(current_stage(alex)).to_contain_text("Manager endorsement")
    await expect(action(alex, "Endorse")).to_have_count(0)  # Morgan's to take, not Alex's
    await expect(action(alex, "Withdraw")).to_be_visible()
    await shot(alex, "ipa-04-opened-alex")

    # Morgan, Alex's manager, finds it waiting on them.
    morgan = await web.sign_in("morgan")
    await expect(morgan.get_by_role("link", name=re.compile(r"^Waiting on me"))).to_have_attribute(
        "aria-current", "page"
    )
    await shot(morgan, "ipa-05-my-work-morgan")
    await morgan.get_by_role("link", name=case_id).click()
    await morgan.wait_for_url(f"**/cases/{case_id}")
    # A decline needs a reason: refused, the message beside the field, nothing changed.
    await take(morgan, "Decline")
    await expect(morgan.get_by_role("alert")).to_contain_text("Decline was not done")
    await expect(action(morgan, "Decline").locator(".govuk-error-message")).to_contain_text(
        "Enter the reason"
    )
    await expect(current_stage(morgan)).to_contain_text("Manager endorsement")
    await shot(morgan, "ipa-06-refused-action-morgan")
    await take(morgan, "Endorse")
    await expect(morgan.get_by_role("status")).to_contain_text("now at the SAC review stage")
    await shot(morgan, "ipa-07-endorsed-morgan")

    # Sam, a SAC officer, takes it from the SAC queue.
    sam = await web.sign_in("sam")
    await sam.get_by_role("link", name=re.compile(r"^SAC queue")).click()
    await sam.get_by_role("link", name=case_id).click()
    await sam.wait_for_url(f"**/cases/{case_id}")
    await expect(action(sam, "Ask the requester")).to_be_visible()
    await shot(sam, "ipa-08-sac-review-sam")
    await take(sam, "Approve", confirm=True)
    await expect(sam.get_by_role("status")).to_contain_text("now at the active stage")
    timeline = sam.locator(".moj-timeline")
    for kind_name in ("Opened", "Refused", "Endorse", "Approve"):
        await expect(timeline).to_contain_text(kind_name)
    await shot(sam, "ipa-09-approved-sam")

    # Alex sees the account approved, and the yearly attestation that is now theirs (3.2).
    await alex.goto(f"/cases/{case_id}")
    await expect(current_stage(alex)).to_contain_text("Active")
    await expect(action(alex, "Attest")).to_be_visible()
    await shot(alex, "ipa-10-active-alex")


async def test_an_investigation_reported_by_jordan_investigated_by_jo_closed_by_robin(
    web: Stack,
) -> None:
    jordan = await web.sign_in("jordan", "/cases/new")
    await jordan.get_by_role("link", name="Abuse investigation").click()
    await jordan.get_by_label("Category").select_option("harassment")
    await jordan.get_by_label("Platform").fill("Facebook")
    await jordan.get_by_label("Description", exact=True).fill(
        "Repeated posts about my work in a public group"
    )
    await jordan.get_by_label("Occurred on").fill(london_date(-3))
    await jordan.get_by_label("Source").select_option("staff_report")
    await jordan.get_by_label("Content URLs").fill("https://facebook.example/groups/1/posts/2")
    await jordan.get_by_label("Targets").fill("jordan.employee@dwp.gov.uk")
    perpetrator = jordan.get_by_role("group", name=re.compile(r"^Perpetrator"))
    await perpetrator.get_by_label("Kind").select_option("employee")
    await perpetrator.get_by_label(re.compile(r"^\s*Email")).fill("alex.employee@dwp.gov.uk")
    await shot(jordan, "abu-01-report-form-jordan")
    await jordan.get_by_role("button", name="Open the case").click()
    await jordan.wait_for_url(re.compile(r"/cases/ABU-\d{4}-\d{6}$"))
    case_id = jordan.url.rsplit("/", 1)[1]
    # The reporter follows its progress in outline only (policy 6.3).
    await expect(jordan.get_by_text("This case is confidential")).to_be_visible()
    await expect(jordan.get_by_role("heading", name="Details")).to_have_count(0)
    await shot(jordan, "abu-02-reported-outline-jordan")

    # Anyone else who is not SIRT is told there is no such case.
    sam = await web.sign_in("sam")
    response = await sam.goto(f"/cases/{case_id}")
    assert response is not None and response.status == 404
    await shot(sam, "abu-03-not-found-sam")

    # Robin, the SIRT lead, assigns Jo from the SIRT queue.
    robin = await web.sign_in("robin")
    await robin.get_by_role("link", name=re.compile(r"^SIRT queue")).click()
    await robin.get_by_role("link", name=case_id).click()
    await robin.wait_for_url(f"**/cases/{case_id}")
    assign = action(robin, "Assign an investigator")
    await assign.get_by_label("Investigator").select_option("jo.sirt@dwp.gov.uk")  # a picker
    await shot(robin, "abu-04-triage-robin")
    await take(robin, "Assign an investigator")
    await expect(robin.get_by_role("status")).to_contain_text("now at the investigation stage")

    # Jo finds it waiting on them, adds evidence and concludes.
    jo = await web.sign_in("jo")
    await jo.get_by_role("link", name=case_id).click()
    await jo.wait_for_url(f"**/cases/{case_id}")
    evidence = action(jo, "Add evidence")
    await evidence.get_by_label("Description").fill("Screenshot of the group's posts")
    await evidence.get_by_label(re.compile(r"^\s*URL")).fill("https://facebook.example/groups/1")
    await take(jo, "Add evidence")
    await expect(jo.get_by_role("status")).to_contain_text("Add evidence: done")
    conclude = action(jo, "Conclude")
    await conclude.get_by_label("Finding").select_option("substantiated")
    await conclude.get_by_label("Summary").fill("The posts were made by a colleague")
    await conclude.get_by_role("group", name=re.compile(r"^Refer")).get_by_label("Yes").check()
    await shot(jo, "abu-05-investigation-jo")
    await take(jo, "Conclude")
    await expect(jo.get_by_role("status")).to_contain_text("now at the review stage")
    await expect(action(jo, "Close")).to_have_count(0)  # four eyes: not the investigator
    await shot(jo, "abu-06-concluded-jo")

    # Robin closes it; the finding refers the colleague to HR as a linked case.
    await robin.goto(f"/cases/{case_id}")
    await take(robin, "Close", confirm=True)
    await expect(robin.get_by_role("status")).to_contain_text("closed: substantiated")
    related = robin.locator("section", has=robin.get_by_role("heading", name="Related cases"))
    # Named, not linked: the SIRT lead may not open an HR referral (no dead link).
    await expect(related).to_contain_text("(you may not open it)")
    await expect(related.get_by_role("link", name=re.compile(r"^DIS-"))).to_have_count(0)
    await shot(robin, "abu-07-closed-robin")

    # Kim, the HR lead, sees the referral; Jordan sees only that the case is closed.
    found = re.search(r"DIS-\d{4}-\d{6}", await related.inner_text())
    assert found, "the referral is named"
    dis_id = found.group(0)
    kim = await web.sign_in("kim", f"/cases/{dis_id}")
    await expect(kim.get_by_role("heading", level=1)).to_contain_text(dis_id)
    await expect(current_stage(kim)).to_contain_text("HR review")
    await shot(kim, "abu-08-referral-kim")
    await jordan.goto(f"/cases/{case_id}")
    await expect(jordan.get_by_text("Closed: substantiated")).to_be_visible()
    await expect(jordan.get_by_role("heading", name="Timeline")).to_have_count(0)
    await shot(jordan, "abu-09-closed-outline-jordan")
