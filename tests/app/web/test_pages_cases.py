"""The case pages over the real service layer and a time-skipping Temporal: an IPA opened
and progressed through the forms by each person, refusals beside their field, the
confidential outline, forbidden and missing pages, and hostile input shown escaped."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from app import service
from app.service.services import Services
from app.web import work
from domain.calendar import WorkingCalendar
from tests.app.investigations import DETAILS as ABUSE
from tests.app.investigations import REPORTER, add_people
from tests.app.web.conftest import Browser
from tests.fixtures_temporal import SmtpSink, eventually
from tests.today import london_date
from workflows.common import Actor

EMPLOYEE, MANAGER, OFFICER = "employee@dwp.gov.uk", "manager@dwp.gov.uk", "officer@dwp.gov.uk"
IPA_FORM = {
    "account_kind": "individual_professional",
    "platform": "LinkedIn",
    "handle": "jo-example",
    "justification": "Recruitment events",
    "device": "dwp_managed",
    "contact_email": "jo@example.com",
}
Open = Callable[[], Browser]
LONDON = ZoneInfo("Europe/London")


async def as_person(open_browser: Open, email: str) -> Browser:
    browser = open_browser()
    await browser.sign_in(email)
    return browser


def flash_of(page: httpx.Response) -> str:
    """The success banner's message (GOV.UK notification banner, role status)."""
    match = re.search(
        r'role="status"[^>]*>.*?<p class="govuk-notification-banner__heading">\s*([^<]*?)\s*</p>',
        page.text,
        re.S,
    )
    assert match, page.text
    return match.group(1)


def error_beside(page: httpx.Response, field_id: str) -> str:
    """The error message shown inside the field whose control has this id."""
    match = re.search(
        rf'<p id="{re.escape(field_id)}-error" class="govuk-error-message">\s*'
        r'<span class="govuk-visually-hidden">Error:</span> ([^<]*?)\s*</p>',
        page.text,
    )
    assert match, f"no error beside {field_id}"
    return match.group(1)


def summary_value(page: httpx.Response, key: str) -> str:
    """The value of a row of a GOV.UK summary list, by its key."""
    match = re.search(
        rf'<dt class="govuk-summary-list__key">\s*{re.escape(key)}\s*'
        r"(?:<strong[^>]*>[^<]*</strong>)?\s*</dt>\s*"
        r'<dd class="govuk-summary-list__value">\s*(.*?)\s*</dd>',
        page.text,
        re.S,
    )
    assert match, f"no {key} row"
    return match.group(1)


def timeline_titles(page: httpx.Response) -> list[str]:
    """The titles of the timeline's events (MOJ timeline), in the order shown."""
    return re.findall(r'<h3 class="moj-timeline__title">([^<]*)</h3>', page.text)


def case_links(page: httpx.Response) -> list[str]:
    """The cases a list links, in order."""
    return re.findall(r'data-label="Case"><a class="govuk-link" href="/cases/([^"]+)">', page.text)


async def open_ipa(employee: Browser) -> str:
    await employee.get("/cases/new/ipa_approval")
    response = await employee.post("/cases/new/ipa_approval", IPA_FORM)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/cases/IPA-")
    return location.removeprefix("/cases/")


async def act(
    browser: Browser, case_id: str, action: str, *, confirmed: bool = True, **fields: str
) -> httpx.Response:
    """Take an action from the case page; an irreversible one is confirmed (the
    confirmation page's `confirmed=yes`) unless `confirmed` is False."""
    await browser.get(f"/cases/{case_id}")
    extra = {"confirmed": "yes"} if confirmed else {}
    return await browser.post(f"/cases/{case_id}/actions/{action}", {**fields, **extra})


async def test_an_ipa_opened_and_progressed_through_the_forms(
    browser_factory: Open, services: Services
) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    case_id = await open_ipa(employee)
    page = await employee.get(f"/cases/{case_id}")
    assert f"Opened {case_id}: now at the manager endorsement stage." == flash_of(page)
    assert '<li class="current" aria-current="step">Manager endorsement' in page.text
    assert "manager@dwp.gov.uk" in summary_value(page, "Waiting on")
    assert 'action="/cases/' + case_id + '/actions/withdraw"' in page.text
    assert "/actions/endorse" not in page.text  # the requester may not endorse

    manager = await as_person(browser_factory, MANAGER)
    work = await manager.get("/")
    assert case_links(work) == [case_id]
    assert "badge--on-time" in work.text
    endorsed = await act(manager, case_id, "endorse")
    assert endorsed.status_code == 303 and endorsed.headers["location"] == f"/cases/{case_id}"
    assert "Endorse: done" in flash_of(await manager.get(f"/cases/{case_id}"))

    officer = await as_person(browser_factory, OFFICER)
    queue = await officer.get("/")  # nothing waits on Sam: the first list with cases
    assert 'view=team-sac" aria-current="page">SAC queue (1)</a>' in queue.text
    assert case_id in queue.text
    late = await officer.get("/?view=team-sac&overdue=yes")
    assert "SAC queue: 0 cases" in late.text and "matches those filters" in late.text
    asked = await act(officer, case_id, "request_info", question="Which events?")
    assert asked.status_code == 303
    answered = await act(employee, case_id, "provide_info", answer="Graduate fairs")
    assert answered.status_code == 303
    approved = await act(officer, case_id, "approve")
    assert approved.status_code == 303

    case = await service.get_case(services, actor=Actor(OFFICER, ["sac"]), case_id=case_id)
    assert (case["status"], case["stage"]) == ("open", "active")
    final = await employee.get(f"/cases/{case_id}")
    titles = timeline_titles(final)
    for kind in ("Opened", "Endorse", "Ask the requester", "Answer", "Approve"):
        assert kind in titles
    assert "Graduate fairs" in final.text
    assert "/actions/attest" in final.text  # the holder attests once a year (3.2)


async def test_refusals_are_shown_beside_their_field_and_nothing_starts(
    browser_factory: Open, services: Services
) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    page = await employee.get("/cases/new/ipa_approval")
    # Each rule beside its field, with the policy section it comes from.
    assert "Personal accounts need no approval (policy 5.1)" in page.text
    assert "outside this policy (policy 7.2)" in page.text
    assert "LinkedIn account must use a personal email" in page.text

    personal = await employee.post(
        "/cases/new/ipa_approval", {**IPA_FORM, "account_kind": "personal"}
    )
    assert personal.status_code == 422
    assert "Personal accounts need no approval (policy 5.1)" in error_beside(
        personal, "new-account_kind"
    )
    assert re.search(r'name="handle"[^>]* value="jo-example"', personal.text)  # kept as typed

    union = await employee.post(
        "/cases/new/ipa_approval", {**IPA_FORM, "account_kind": "trade_union"}
    )
    assert "(policy 7.2)" in error_beside(union, "new-account_kind")

    linkedin = {**IPA_FORM, "account_kind": "linkedin", "contact_email": "me@dwp.gov.uk"}
    refused = await employee.post("/cases/new/ipa_approval", linkedin)
    assert "personal email address (policy 5.1)" in error_beside(refused, "new-contact_email")

    missing = await employee.post("/cases/new/ipa_approval", {**IPA_FORM, "handle": " "})
    assert missing.status_code == 422
    assert error_beside(missing, "new-handle") == "Enter the handle"

    _, total = await service.list_cases(services, actor=Actor(OFFICER, ["sac"]))
    assert total == 0  # nothing was started


async def test_action_refusals_come_back_inline(browser_factory: Open) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    case_id = await open_ipa(employee)
    manager = await as_person(browser_factory, MANAGER)

    no_reason = await act(manager, case_id, "decline", reason="")
    assert no_reason.status_code == 422
    assert error_beside(no_reason, "action-decline-reason") == "Enter the reason"
    assert "Decline was not done" in no_reason.text

    not_theirs = await act(employee, case_id, "endorse")
    assert not_theirs.status_code == 403
    assert "Only the requester&#39;s manager may endorse this case" in not_theirs.text

    officer = await as_person(browser_factory, OFFICER)
    too_early = await act(officer, case_id, "approve")
    assert too_early.status_code == 409
    assert "You cannot approve this case at the manager endorsement stage" in too_early.text

    page = await employee.get(f"/cases/{case_id}")
    assert '<li class="current" aria-current="step">Manager endorsement' in page.text
    assert "Refused" in timeline_titles(page)  # each refusal is in the audit trail


async def test_hostile_input_is_shown_escaped(browser_factory: Open) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    await employee.get("/cases/new/ipa_approval")
    opened = await employee.post("/cases/new/ipa_approval", {**IPA_FORM, "handle": hostile})
    case_id = opened.headers["location"].removeprefix("/cases/")
    commented = await act(employee, case_id, "comment", text=hostile)
    assert commented.status_code == 303
    page = await employee.get(f"/cases/{case_id}")
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert page.text.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 3
    work = await employee.get("/?view=raised&q=" + "alert")
    assert case_id in work.text and "<script>alert" not in work.text


async def test_confidential_cases_as_the_api_shows_them(
    browser_factory: Open, services: Services
) -> None:
    add_people(services.sessions)
    case = await service.open_case(
        services, actor=REPORTER, case_type="abuse_investigation", details=ABUSE
    )
    case_id = case["id"]
    reporter = await as_person(browser_factory, REPORTER.email)
    outline = await reporter.get(f"/cases/{case_id}")
    assert outline.status_code == 200
    assert "You see only its outline" in outline.text
    for hidden in ("Facebook", "zanzibar", "perp@dwp.gov.uk", "Timeline", "Waiting on"):
        assert hidden not in outline.text
    raised = await reporter.get("/?view=raised")
    assert case_id in raised.text and "outline only" in raised.text

    stranger = await as_person(browser_factory, EMPLOYEE)
    missing = await stranger.get(f"/cases/{case_id}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert f"no such case {case_id}" in missing.text
    nothing = await stranger.get(f"/cases/{case_id}-nope")
    assert nothing.status_code == 404 and "no such case" in nothing.text
    forged = await stranger.post(f"/cases/{case_id}/actions/comment", {"text": "hi"})
    assert forged.status_code == 404

    investigator = await as_person(browser_factory, "sirt@dwp.gov.uk")
    whole = await investigator.get(f"/cases/{case_id}")
    assert "zanzibar" in whole.text and "/actions/assign" in whole.text
    queue = await investigator.get("/?view=team-sirt")
    assert case_id in queue.text


async def test_forbidden_page(browser_factory: Open) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    page = await employee.get("/cases/new/disciplinary_referral")
    assert page.status_code == 403
    assert '<h1 class="govuk-heading-l">You may not do that</h1>' in page.text
    assert "only HR may refer someone" in page.text
    types = await employee.get("/cases/new")
    assert "/cases/new/ipa_approval" in types.text
    assert "/cases/new/disciplinary_referral" not in types.text


async def test_every_page_renders_for_every_kind_of_person(
    browser_factory: Open, services: Services
) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    case_id = await open_ipa(employee)
    people = (EMPLOYEE, MANAGER, OFFICER, "saclead@dwp.gov.uk", "sirt@dwp.gov.uk")
    for email in (*people, "auditor@dwp.gov.uk", "loner@dwp.gov.uk"):
        browser = await as_person(browser_factory, email)
        for path in (
            "/",
            "/?view=raised",
            "/?view=all&status=any",
            "/cases/new",
            f"/cases/{case_id}",
        ):
            page = await browser.get(path)
            # Need to know: an IPA is not SIRT's, nor a colleague's outside the chain.
            hidden = path == f"/cases/{case_id}" and email in (
                "sirt@dwp.gov.uk",
                "loner@dwp.gov.uk",
            )
            assert page.status_code == (404 if hidden else 200), (email, path, page.text)
            assert '<html lang="en-GB" class="govuk-template">' in page.text
            assert '<main class="govuk-main-wrapper" id="main-content"' in page.text
        for case_type in ("ipa_approval", "policy_exception", "abuse_investigation"):
            assert (await browser.get(f"/cases/new/{case_type}")).status_code == 200
    auditor = await as_person(browser_factory, "auditor@dwp.gov.uk")
    page = await auditor.get(f"/cases/{case_id}")
    assert "Nothing for you to do on this case now." in page.text
    assert "Opened" in timeline_titles(page)


async def test_an_investigation_reported_worked_and_closed_through_the_forms(
    browser_factory: Open, services: Services
) -> None:
    add_people(services.sessions)
    reporter = await as_person(browser_factory, REPORTER.email)
    report = {
        "category": "harassment",
        "platform": "Facebook",
        "description": "Posts about a colleague",
        "occurred_on": london_date(-7),
        "source": "staff_report",
        "content_urls": "https://facebook.example/1\nhttps://facebook.example/2",
        "targets": "target@dwp.gov.uk",
        "perpetrator.kind": "employee",
    }
    await reporter.get("/cases/new/abuse_investigation")
    unnamed = await reporter.post("/cases/new/abuse_investigation", report)
    assert unnamed.status_code == 422
    assert "(policy 6.2)" in error_beside(unnamed, "new-perpetrator-email")
    named = {**report, "perpetrator.email": "perp@dwp.gov.uk"}
    opened = await reporter.post("/cases/new/abuse_investigation", named)
    assert opened.status_code == 303, opened.text
    case_id = opened.headers["location"].removeprefix("/cases/")

    sirt = await as_person(browser_factory, "sirt@dwp.gov.uk")
    page = await sirt.get(f"/cases/{case_id}")
    assert "https://facebook.example/1, https://facebook.example/2" in page.text
    assert "Kind: Employee; Email: perp@dwp.gov.uk" in page.text
    assert (await act(sirt, case_id, "assign", investigator="sirt@dwp.gov.uk")).status_code == 303
    evidence = {"description": "Screenshot", "url": "https://facebook.example/1"}
    assert (await act(sirt, case_id, "add_evidence", **evidence)).status_code == 303
    # A file, through the case page's upload form: stored by its hash, downloadable.
    page = await sirt.get(f"/cases/{case_id}")
    assert 'enctype="multipart/form-data"' in page.text
    upload = f"/cases/{case_id}/evidence"
    form = {"csrf_token": sirt.csrf, "description": "The post, saved"}
    no_file = await sirt.client.post(upload, data=form, files={"file": ("", b"", "text/plain")})
    assert no_file.status_code == 422
    assert error_beside(no_file, "upload-file") == "Choose a file to upload"
    content = b"<html>saved post</html>"
    files = {"file": ("post.html", content, "text/html")}
    forged = await sirt.client.post(upload, data={**form, "csrf_token": "x"}, files=files)
    assert forged.status_code == 403
    uploaded = await sirt.client.post(upload, data=form, files=files)
    assert uploaded.status_code == 303, uploaded.text
    page = await sirt.get(f"/cases/{case_id}")
    assert "post.html, 23 bytes, SHA-256" in flash_of(page)
    link = re.search(
        r'<a class="govuk-link" href="(/cases/[^"]+/evidence/[0-9a-f]{64})" download>', page.text
    )
    assert link, "the timeline links the file"
    download = await sirt.client.get(link.group(1))
    assert download.status_code == 200 and download.content == content
    assert download.headers["x-content-type-options"] == "nosniff"
    assert (await reporter.client.get(link.group(1))).status_code == 404
    not_a_bool = await act(sirt, case_id, "conclude", finding="substantiated", summary="Yes")
    assert error_beside(not_a_bool, "action-conclude-refer") == "Answer yes or no: refer"
    concluded = await act(
        sirt, case_id, "conclude", finding="substantiated", summary="Posts found", refer="yes"
    )
    assert concluded.status_code == 303

    lead = await as_person(browser_factory, "sirtlead@dwp.gov.uk")
    closed = await act(lead, case_id, "close")
    assert closed.status_code == 303
    page = await lead.get(f"/cases/{case_id}")
    assert "is closed: substantiated" in flash_of(page)
    # Named, not linked: the lead may not open the referral (no dead link).
    referral = re.search(r"(DIS-[0-9-]+) \(you may not open it\)", page.text)
    assert referral, "the referral it raised is named"
    assert f'href="/cases/{referral.group(1)}"' not in page.text
    outline = await reporter.get(f"/cases/{case_id}")
    assert "Closed: substantiated" in outline.text and "Posts found" not in outline.text


@pytest.mark.todays("winter_weekday", "summer_weekday")
async def test_the_page_and_the_email_show_the_due_time_in_london_time(
    browser_factory: Open,
    services: Services,
    smtp_sink: tuple[SmtpSink, int],
    today: datetime,
) -> None:
    employee = await as_person(browser_factory, EMPLOYEE)
    case_id = await open_ipa(employee)
    due = WorkingCalendar().add(today, "3wd").astimezone(LONDON)
    assert due.hour == 17
    season = "BST" if due.dst() else "GMT"
    assert season == ("BST" if today.astimezone(LONDON).dst() else "GMT")
    page = await employee.get(f"/cases/{case_id}")
    shown = f"{due:%a} {due.day} {due:%b %Y}, 17:00 {season}"
    assert f'<time datetime="{due.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}">{shown}</time>' in page.text
    # The manager is asked to endorse it by the same time, said in a sentence.
    sink, _ = smtp_sink
    await eventually(lambda: bool(sink.to(MANAGER)))
    said = f"{due:%A} {due.day} {due:%B %Y} at 17:00 {season}"
    assert said in str(sink.to(MANAGER)[0]["Subject"])


@pytest.mark.todays("saturday", "winter_weekday")
async def test_my_work_pages_through_cases_soonest_due_first(
    browser_factory: Open, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(work, "PAGE_SIZE", 2)
    employee = await as_person(browser_factory, EMPLOYEE)
    opened = [await open_ipa(employee) for _ in range(3)]
    first = await employee.get("/?view=raised")
    assert "Raised by me: 3 cases" in first.text and "Page 1 of 2" in first.text
    listed = case_links(first)
    # Opened one after another, all due at the end of the same working day: among cases
    # due at once, the oldest first.
    assert listed == opened[:2]
    next_link = re.search(
        r'<a class="govuk-link govuk-pagination__link" href="([^"]+)" rel="next">', first.text
    )
    assert next_link
    second = await employee.get(next_link.group(1).replace("&amp;", "&"))
    assert case_links(second) == opened[2:]
    searched = await employee.get(f"/?view=all&q={opened[1]}")
    assert case_links(searched) == [opened[1]]
    by_stage = await employee.get("/?view=raised&stage=sac_review")
    assert "Raised by me: 0 cases" in by_stage.text
    by_type = await employee.get("/?view=raised&type=policy_exception&status=any")
    assert "Raised by me: 0 cases" in by_type.text
    assert '<option value="policy_exception" selected>' in by_type.text.replace("\n", "")
    assert "Raised by me: 3 cases" in (await employee.get("/?view=raised&type=ipa_approval")).text
    unknown = await employee.get("/?type=nonsense")
    assert unknown.status_code == 422 and "unknown case type" in unknown.text


async def test_a_referrals_subject_sees_its_outline_and_may_still_appeal(
    browser_factory: Open, services: Services
) -> None:
    add_people(services.sessions)
    hr = await as_person(browser_factory, "hr@dwp.gov.uk")
    types = await hr.get("/cases/new")
    assert "/cases/new/disciplinary_referral" in types.text  # HR may open referrals
    await hr.get("/cases/new/disciplinary_referral")
    referral = {
        "subject": EMPLOYEE,
        "breach": "Posted confidential <b>case notes</b>",
        "policy_sections": "6.1, 6.2",
        "criminal_consideration": "no",
    }
    opened = await hr.post("/cases/new/disciplinary_referral", referral)
    assert opened.status_code == 303, opened.text
    case_id = opened.headers["location"].removeprefix("/cases/")
    steps = (
        ("accept", {"caseworker": "hr@dwp.gov.uk"}),
        ("schedule_hearing", {"on": london_date(14)}),
        ("record_outcome", {"outcome": "first_written_warning", "reason": "Admitted"}),
    )
    for action, fields in steps:
        assert (await act(hr, case_id, action, **fields)).status_code == 303, action

    subject = await as_person(browser_factory, EMPLOYEE)
    page = await subject.get(f"/cases/{case_id}")
    assert "You see only its outline" in page.text
    for hidden in ("case notes", "Admitted", "hr@dwp.gov.uk", "Timeline", "6.1, 6.2"):
        assert hidden not in page.text, hidden
    assert f'action="/cases/{case_id}/actions/appeal"' in page.text
    appealed = await act(subject, case_id, "appeal", grounds="The notes were public")
    assert appealed.status_code == 303
    after = await subject.get(f"/cases/{case_id}")
    assert "Appeal: done" in flash_of(after) and "The notes were public" not in after.text

    whole = await hr.get(f"/cases/{case_id}")
    assert "The notes were public" in whole.text
    assert "Posted confidential &lt;b&gt;case notes&lt;/b&gt;" in whole.text
