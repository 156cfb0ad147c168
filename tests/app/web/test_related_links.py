"""No dead links (issue 14, finding 8): a related case is linked only for those who may
open it, and otherwise named, with why there is no link."""

from __future__ import annotations

from datetime import UTC, datetime

from app.service.people import import_people
from app.service.services import Services
from domain.records import upsert_case
from tests.app.web.conftest import Browser
from workflows import investigation_types as abu
from workflows import referral_types as dis
from workflows.common import CaseSnapshot, Link

MORE = """email,name,manager_email,roles
sirtlead@dwp.gov.uk,SIRT Lead,ceo@dwp.gov.uk,sirt;sirt_lead
hr@dwp.gov.uk,HR Officer,ceo@dwp.gov.uk,hr
admin@dwp.gov.uk,Administrator,,admin
"""


def closed_investigation_and_its_referral(services: Services) -> tuple[str, str]:
    now = datetime.now(UTC)
    common = {"status": "open", "opened_at": now, "updated_at": now, "confidential": True}
    investigation = CaseSnapshot(
        id="ABU-L-1",
        type=abu.TYPE,
        stage="closed",
        requester="employee@dwp.gov.uk",
        team="sirt",
        links=[Link("DIS-L-1", "referral")],
        parties={"requester": "employee@dwp.gov.uk"},
        **{**common, "status": "closed"},
    )
    referral = CaseSnapshot(
        id="DIS-L-1",
        type=dis.TYPE,
        stage=dis.HR_REVIEW,
        requester="sirtlead@dwp.gov.uk",
        team="hr",
        links=[Link("ABU-L-1", "investigation")],
        parties={"requester": "sirtlead@dwp.gov.uk", "subject": "employee@dwp.gov.uk"},
        **common,
    )
    with services.sessions.begin() as session:
        import_people(session, MORE)
        upsert_case(session, investigation)
        upsert_case(session, referral)
    return investigation.id, referral.id


async def test_a_related_case_is_linked_only_for_whoever_may_open_it(
    offline_services: Services, offline_browser: Browser
) -> None:
    abu_id, dis_id = closed_investigation_and_its_referral(offline_services)
    # The SIRT lead may open the investigation, not the referral it raised.
    await offline_browser.sign_in("sirtlead@dwp.gov.uk")
    page = await offline_browser.get(f"/cases/{abu_id}")
    assert page.status_code == 200
    assert f'href="/cases/{dis_id}"' not in page.text
    assert f"{dis_id} (you may not open it)" in page.text
    # HR may open the referral, not the investigation behind it.
    await offline_browser.sign_in("hr@dwp.gov.uk")
    page = await offline_browser.get(f"/cases/{dis_id}")
    assert f'href="/cases/{abu_id}"' not in page.text
    assert f"{abu_id} (you may not open it)" in page.text
    # An administrator may open both: both linked.
    await offline_browser.sign_in("admin@dwp.gov.uk")
    page = await offline_browser.get(f"/cases/{abu_id}")
    assert f'href="/cases/{dis_id}"' in page.text
