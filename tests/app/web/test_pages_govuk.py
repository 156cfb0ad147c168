"""Forms people can finish and pages shaped for people (issue 14, findings 5, 6 and 9),
through the real pages over the service layer and a time-skipping Temporal: every error
at once, each linked to its field; the question beside the answer box; why an action is
not yours; a stale page answered with what changed; a confirmation page before an
irreversible action; labels in the contract's words, names beside emails, a requester
column, a timeline that folds system mail away and filters by kind and order."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

from app import service
from app.service.errors import Invalid
from app.service.services import Services
from app.web.render import INLINE_SCRIPT_HASHES
from tests.app.web.conftest import Browser
from tests.app.web.test_pages_cases import (
    EMPLOYEE,
    IPA_FORM,
    MANAGER,
    OFFICER,
    Open,
    act,
    as_person,
    error_beside,
    flash_of,
    open_ipa,
    summary_value,
    timeline_titles,
)
from tests.fixtures_temporal import SmtpSink, eventually
from workflows.common import Actor

LEAD = "saclead@dwp.gov.uk"
PEX_FORM = {
    "policy_section": "5.1",
    "requirement": "A personal phone for out-of-hours posts",
    "justification": "Press office rota",
    "risk": "Loss of the phone",
    "compensating_controls": "Device PIN and remote wipe",
    "duration_days": "90",
}


def summary_links(page: httpx.Response) -> list[tuple[str, str]]:
    """The error summary's list: (href, text) of each linked problem."""
    summary = page.text.split('govuk-error-summary__list">', 1)
    assert len(summary) == 2, "no error summary list"
    body = summary[1].split("</ul>", 1)[0]
    return [(h, t.strip()) for h, t in re.findall(r'<a href="([^"]+)">([^<]*)</a>', body)]


def ids(page: httpx.Response) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', page.text))


async def test_an_empty_form_shows_every_error_at_once_each_linked_to_its_field(
    browser_factory: Open, services: Services
) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    await employee.get("/cases/new/ipa_approval")
    empty = await employee.post("/cases/new/ipa_approval", {})
    assert empty.status_code == 422
    links = summary_links(empty)
    assert links == [
        ("#new-account_kind", "Choose the account kind"),
        ("#new-platform", "Enter the platform"),
        ("#new-handle", "Enter the handle"),
        ("#new-justification", "Enter the justification"),
        ("#new-device", "Choose the device"),
        ("#new-contact_email", "Enter the contact email"),
    ]
    assert {href[1:] for href, _ in links} <= ids(empty)  # each link lands on its field
    assert error_beside(empty, "new-device") == "Choose the device"
    assert "details.account_kind" not in empty.text and ": required" not in empty.text
    assert "<title>Error: New IPA approval - Casework</title>" in empty.text

    # Typed values stay, and only what is still wrong is listed.
    partly = await employee.post(
        "/cases/new/ipa_approval", {"platform": "X", "handle": "@me", "contact_email": "nope"}
    )
    texts = [text for _, text in summary_links(partly)]
    assert "Enter the platform" not in texts and "Choose the account kind" in texts
    assert any("email address" in text for text in texts)
    assert re.search(r'name="handle"[^>]* value="@me"', partly.text)

    # The API says the same at once: the first as `message`, every one in `problems`.
    with pytest.raises(Invalid) as refused:
        await service.open_case(
            services, actor=Actor(EMPLOYEE, []), case_type="ipa_approval", details={}
        )
    assert refused.value.message == "details.account_kind: required"
    assert [p.field for p in refused.value.problems] == [
        "details.account_kind",
        "details.platform",
        "details.handle",
        "details.justification",
        "details.device",
        "details.contact_email",
    ]
    _, total = await service.list_cases(services, actor=Actor(OFFICER, ["sac"]))
    assert total == 0  # nothing started


async def test_an_action_refused_lists_every_field_and_the_question_is_beside_the_answer(
    browser_factory: Open,
) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    case_id = await open_ipa(employee)
    manager = await as_person(browser_factory, MANAGER)
    assert (await act(manager, case_id, "endorse")).status_code == 303
    officer = await as_person(browser_factory, OFFICER)
    asked = await act(officer, case_id, "request_info", question="Which events, and when?")
    assert asked.status_code == 303

    page = await employee.get(f"/cases/{case_id}")
    form = page.text.split('id="action-provide_info"', 1)[1].split("</form>", 1)[0]
    question = form.index("Which events, and when?")
    assert "The question you were asked" in form
    assert question < form.index('name="answer"')  # above the answer box

    blank = await act(employee, case_id, "provide_info", answer="  ")
    assert blank.status_code == 422
    assert summary_links(blank) == [("#action-provide_info-answer", "Enter the answer")]
    assert "Answer was not done" in blank.text


async def test_an_action_that_is_not_yours_says_why_in_the_rules_own_words(
    browser_factory: Open,
) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    await employee.get("/cases/new/policy_exception")
    opened = await employee.post("/cases/new/policy_exception", PEX_FORM)
    assert opened.status_code == 303, opened.text
    case_id = opened.headers["location"].removeprefix("/cases/")

    officer = await as_person(browser_factory, OFFICER)
    triage = await officer.get(f"/cases/{case_id}")
    assert "Not yours to do at this stage" not in triage.text  # the officer may triage

    lead = await as_person(browser_factory, LEAD)
    assert (await act(lead, case_id, "accept")).status_code == 303
    assessed = await act(
        lead, case_id, "submit_assessment", risk_rating="low", assessment="Controls suffice"
    )
    assert assessed.status_code == 303
    page = await lead.get(f"/cases/{case_id}")
    assert f'action="/cases/{case_id}/actions/approve"' not in page.text
    assert (
        "<strong>Approve</strong>: You assessed this policy exception; another SAC lead must "
        "approve it (four eyes, policy 5.2)." in page.text
    )
    # A SAC officer learns whose decision it is.
    queue = await officer.get(f"/cases/{case_id}")
    assert "<strong>Approve</strong>: Only a SAC lead may approve this case (policy 5.2)." in (
        queue.text
    )
    # The requester is told nothing of the team's rules.
    own = await employee.get(f"/cases/{case_id}")
    assert "Not yours to do at this stage" not in own.text


async def test_a_stale_page_is_answered_with_what_changed(browser_factory: Open) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    case_id = await open_ipa(employee)
    manager = await as_person(browser_factory, MANAGER)
    assert (await act(manager, case_id, "endorse")).status_code == 303
    sam = await as_person(browser_factory, OFFICER)
    lee = await as_person(browser_factory, LEAD)
    seen = await sam.get(f"/cases/{case_id}")  # Sam opens the page at SAC review...
    assert 'name="seen_stage" value="sac_review"' in seen.text
    assert (await act(lee, case_id, "approve")).status_code == 303  # ...Lee approves it

    stale = await sam.post(
        f"/cases/{case_id}/actions/reject",
        {"reason": "Too risky", "seen_stage": "sac_review", "confirmed": "yes"},
    )
    assert stale.status_code == 409
    assert "This case moved to Active since you opened the page." in stale.text
    assert "Reject was not done: nothing has changed." in stale.text
    banner = stale.text.split('class="govuk-notification-banner', 1)[1].split("</section>")[0]
    assert "is not allowed in stage" not in banner.split('id="status-title"')[0]
    assert re.search(r'name="reason"[^>]*>\s*Too risky', stale.text) is None  # no reject form


async def test_irreversible_actions_ask_for_confirmation_first(
    browser_factory: Open, services: Services
) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    case_id = await open_ipa(employee)
    page = await employee.get(f"/cases/{case_id}")
    assert "You will be asked to confirm" in page.text

    asked = await act(employee, case_id, "withdraw", confirmed=False)
    assert asked.status_code == 200
    assert "Are you sure you want to withdraw this IPA approval?" in asked.text
    assert "Withdraw cannot be undone." in asked.text
    assert 'name="confirmed" value="yes"' in asked.text
    assert f'href="/cases/{case_id}"' in asked.text  # the way back
    case = await service.get_case(services, actor=Actor(EMPLOYEE, []), case_id=case_id)
    assert (case["status"], case["stage"]) == ("open", "manager_endorsement")  # not sent

    # A bad field is answered before the confirmation page, beside the field.
    manager = await as_person(browser_factory, MANAGER)
    no_reason = await act(manager, case_id, "decline", confirmed=False)
    assert no_reason.status_code == 422
    assert error_beside(no_reason, "action-decline-reason") == "Enter the reason"
    # With a reason, the confirmation page carries it to the button that sends it.
    confirm = await act(manager, case_id, "decline", confirmed=False, reason="Not needed")
    assert confirm.status_code == 200 and "Are you sure you want to decline" in confirm.text
    assert 'name="reason" value="Not needed"' in confirm.text
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', confirm.text))
    sent = await manager.post(f"/cases/{case_id}/actions/decline", hidden)
    assert sent.status_code == 303
    assert "is closed: declined" in flash_of(await manager.get(f"/cases/{case_id}"))

    # Reversible actions go at once.
    other = await open_ipa(employee)
    assert (await act(employee, other, "comment", confirmed=False, text="Hi")).status_code == 303


async def test_pages_speak_the_contracts_words_and_name_people(
    browser_factory: Open, services: Services, smtp_sink: tuple[SmtpSink, int]
) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    await employee.get("/cases/new/ipa_approval")
    linkedin = {**IPA_FORM, "account_kind": "linkedin", "platform": "LinkedIn"}
    opened = await employee.post("/cases/new/ipa_approval", linkedin)
    case_id = opened.headers["location"].removeprefix("/cases/")
    manager = await as_person(browser_factory, MANAGER)
    assert (await act(manager, case_id, "endorse")).status_code == 303
    page = await employee.get(f"/cases/{case_id}")
    assert summary_value(page, "Account kind") == "LinkedIn"
    assert summary_value(page, "Device") == "DWP managed"
    assert "Linkedin" not in page.text and "Dwp managed" not in page.text
    assert "dwp_managed" not in page.text.replace('value="dwp_managed"', "")
    assert summary_value(page, "Raised by") == "Employee (employee@dwp.gov.uk)"
    assert "by Line Manager (manager@dwp.gov.uk)" in page.text  # the endorsement's byline

    # The system's own mail folded away; the timeline filtered by kind, newest first.
    await _until_mailed(employee, case_id)
    page = await employee.get(f"/cases/{case_id}")
    folded = page.text.split("Emails Casework sent about this case", 1)
    assert len(folded) == 2 and 'class="govuk-details' in folded[0][-400:]
    assert "Emailed" not in timeline_titles(page)
    assert timeline_titles(page)[:2] == ["Opened", "Endorse"]
    newest = await employee.get(f"/cases/{case_id}?order=newest")
    assert timeline_titles(newest)[-1] == "Opened" and timeline_titles(newest)[0] != "Opened"
    only = await employee.get(f"/cases/{case_id}?kind=endorse")
    assert timeline_titles(only) == ["Endorse"]

    # The queue: a requester column, by name; sortable columns (MOJ sortable table).
    officer = await as_person(browser_factory, OFFICER)
    queue = await officer.get("/?view=team-sac")
    assert 'data-module="moj-sortable-table"' in queue.text
    assert '<th scope="col" class="govuk-table__header" aria-sort="none">Requester</th>' in (
        queue.text
    )
    assert re.search(
        r'data-label="Requester"[^>]*><span class="casework-name">Employee</span>', queue.text
    )


async def _until_mailed(browser: Browser, case_id: str) -> None:
    """Wait until the case's timeline has recorded a sent email (the worker sends it)."""

    async def mailed() -> bool:
        return (
            "Emails Casework sent about this case" in (await browser.get(f"/cases/{case_id}")).text
        )

    await eventually(mailed)


async def test_pages_need_no_inline_script_but_the_templates_own_snippet(
    browser_factory: Open,
) -> None:
    """A strict CSP can apply: no inline event handler or style attribute, scripts from
    /static and /assets only, and the one inline script is the GOV.UK template's, whose
    hash `INLINE_SCRIPT_HASHES` gives; the assets are served from node_modules."""
    employee = await as_person(browser_factory, EMPLOYEE)
    case_id = await open_ipa(employee)
    for path in ("/", "/cases/new/ipa_approval", f"/cases/{case_id}", "/?view=all"):
        page = await employee.get(path)
        assert not re.search(r"\son[a-z]+=", page.text), path
        assert not re.search(r'\sstyle="', page.text), path
        inline = re.findall(r"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", page.text, re.S)
        digests = {
            "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
            for s in inline
        }
        assert len(inline) == 1 and digests == set(INLINE_SCRIPT_HASHES), path
        assert "js-enabled" in inline[0]
        sources = re.findall(r'<script[^>]*\ssrc="([^"]+)"', page.text)
        assert sources == ["/static/init.js"], path
    for asset in ("/assets/govuk-frontend.min.css", "/assets/moj-frontend.min.js"):
        assert (await employee.get(asset)).status_code == 200, asset
    assert (await employee.get("/assets/fonts/bold-b542beb274-v2.woff2")).status_code == 200
    init = await employee.get("/static/init.js")
    assert "initAll" in init.text and "/assets/govuk-frontend.min.js" in init.text
