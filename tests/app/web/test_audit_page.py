"""The auditor's page of a case (app.web.audit): the chain verified by the CLI's
verifier, tampering named, the case's export downloaded, and none of it for anyone
but auditors and administrators."""

from __future__ import annotations

import json

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.service.verify_export import check_heads, verify_events
from models import CaseEvent
from tests.app.service.test_audit import A, B, recorded  # noqa: F401 (the fixture)
from tests.app.web.conftest import Browser

AUDITOR, EMPLOYEE = "auditor@dwp.gov.uk", "employee@dwp.gov.uk"


async def test_an_auditor_verifies_a_chain_and_downloads_its_export(
    offline_browser: Browser,
    recorded: sessionmaker[Session],  # noqa: F811
) -> None:
    await offline_browser.sign_in(AUDITOR)
    case = await offline_browser.get(f"/cases/{A}")
    assert case.status_code == 200, case.text
    assert f'href="/cases/{A}/audit"' in case.text

    page = await offline_browser.get(f"/cases/{A}/audit")
    assert page.status_code == 200
    assert "The chain is intact" in page.text and "All 5 events" in page.text

    events = await offline_browser.get(f"/cases/{A}/audit/events.jsonl")
    assert events.status_code == 200
    assert f'filename="{A}-events.jsonl"' in events.headers["content-disposition"]
    rows = [json.loads(line) for line in events.text.splitlines()]
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5] and {r["case_id"] for r in rows} == {A}
    cases = await offline_browser.get(f"/cases/{A}/audit/cases.jsonl")
    assert [json.loads(line)["id"] for line in cases.text.splitlines()] == [A]
    # The export checks out with the standard-library verifier, as a third party would.
    report = check_heads(
        verify_events(rows), [json.loads(line) for line in cases.text.splitlines()]
    )
    assert report.ok and report.events == 5, report.problem
    csv = await offline_browser.get(f"/cases/{A}/audit/events.csv")
    assert csv.status_code == 200 and csv.text.startswith("case_id,seq,")
    missing = await offline_browser.get(f"/cases/{A}/audit/events.xml")
    assert missing.status_code == 404

    with recorded.begin() as session:
        session.execute(
            update(CaseEvent)
            .where(CaseEvent.case_id == A, CaseEvent.seq == 3)
            .values(data={"n": 99}),
            execution_options={"synchronize_session": False},
        )
    broken = await offline_browser.get(f"/cases/{A}/audit")
    assert "The chain is broken" in broken.text
    assert f"{A} event 3: hash does not match its contents" in broken.text
    intact = await offline_browser.get(f"/cases/{B}/audit")  # one case's chain, alone
    assert "The chain is intact" in intact.text


async def test_only_auditors_and_administrators_may(
    offline_browser: Browser,
    recorded: sessionmaker[Session],  # noqa: F811
) -> None:
    await offline_browser.sign_in(EMPLOYEE)
    for path in (f"/cases/{A}/audit", f"/cases/{A}/audit/events.jsonl"):
        refused = await offline_browser.get(path)
        assert refused.status_code == 403, path
        assert "auditors and administrators only" in refused.text
    await offline_browser.get("/")
    await offline_browser.post("/signout")
    await offline_browser.sign_in(AUDITOR)
    assert (await offline_browser.get("/cases/IPA-2026-999999/audit")).status_code == 404
