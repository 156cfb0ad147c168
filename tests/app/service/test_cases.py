"""The service layer, on a real database (SQLite and PostgreSQL) and the time-skipping server."""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.service import TLSConfig

from app import service
from app.platform.settings import Settings
from app.platform.temporal import tls_config
from app.service.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError, Unavailable
from app.service.services import Services
from domain.case_ids import next_case_id
from domain.records import upsert_case
from domain.views import PARTIAL_FIELDS, snapshot_of, view_of
from models import Case, CaseCounter, CaseEvent
from tests.app.conftest import NoTemporal
from workflows import ipa_types
from workflows.common import Actor, CaseSnapshot
from workflows.registry import CASE_TYPES

EMPLOYEE = Actor("employee@dwp.gov.uk", [], "Employee")
MANAGER = Actor("manager@dwp.gov.uk", [], "Line Manager")
LONER = Actor("loner@dwp.gov.uk", [], "No Manager")
OFFICER = Actor("officer@dwp.gov.uk", ["sac"], "SAC Officer")
SIRT = Actor("sirt@dwp.gov.uk", ["sirt"], "Investigator")
AUDITOR = Actor("auditor@dwp.gov.uk", ["auditor"], "Auditor")
DETAILS: dict[str, Any] = {
    "account_kind": "individual_professional",
    "platform": "X",
    "handle": "@dwp_jobs",
    "justification": "Promote job fairs",
    "device": "dwp_managed",
    "contact_email": " Employee@DWP.gov.uk ",
}
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def open_ipa(svc: Services, actor: Actor = EMPLOYEE, **details: Any) -> dict[str, Any]:
    return await service.open_case(
        svc, actor=actor, case_type="ipa_approval", details={**DETAILS, **details}
    )


async def act(svc: Services, actor: Actor, case_id: str, action: str, **fields: Any) -> Any:
    return await service.act(svc, actor=actor, case_id=case_id, action=action, fields=fields)


async def refused(
    svc: Services, error: type[ServiceError], actor: Actor, case_id: str, action: str, **f: Any
) -> str:
    with pytest.raises(error) as info:
        await act(svc, actor, case_id, action, **f)
    return info.value.message


async def kinds(svc: Services, case_id: str) -> list[tuple[str, dict[str, Any]]]:
    events = await service.case_events(svc, actor=AUDITOR, case_id=case_id)
    return [(e["kind"], e["data"]) for e in events]


async def test_opening_numbers_the_case_and_returns_it_as_the_requester_sees_it(
    services: Services,
) -> None:
    case = await open_ipa(services)
    number = int(case["id"].rpartition("-")[2])
    assert re.match(rf"^IPA-{datetime.now(UTC).year}-\d{{6}}$", case["id"])
    assert (case["type"], case["status"], case["stage"]) == (
        "ipa_approval",
        "open",
        "manager_endorsement",
    )
    assert case["requester"] == "employee@dwp.gov.uk"
    assert case["details"]["contact_email"] == "employee@dwp.gov.uk"  # cleaned
    assert case["actions"] == ["withdraw", "comment"]
    for key in ("opened_at", "updated_at", "due_at"):
        assert ISO_Z.match(case[key]), case[key]
    assert set(case) == {
        *("id", "type", "status", "stage", "outcome", "requester", "assignee", "team"),
        *("due_at", "overdue", "escalation_level", "opened_at", "updated_at", "closed_at"),
        *("details", "links", "actions"),
    }
    assert (await open_ipa(services, LONER))[
        "id"
    ] == f"IPA-{datetime.now(UTC).year}-{number + 1:06d}"
    assert await service.get_case(services, actor=MANAGER, case_id=case["id"]) == {
        **case,
        "actions": ["endorse", "decline", "comment"],
    }


async def test_a_requester_without_a_manager_goes_straight_to_the_sac(
    services: Services,
) -> None:
    case = await open_ipa(services, LONER)
    assert case["stage"] == "sac_review"


@pytest.mark.parametrize(
    ("case_type", "details", "message"),
    [
        (
            "ipa_approval",
            {**DETAILS, "account_kind": "personal"},
            "details.account_kind: personal accounts need no approval (policy 5.1)",
        ),
        (
            "ipa_approval",
            {**DETAILS, "account_kind": "trade_union"},
            "details.account_kind: official trade union accounts are outside this policy "
            "(policy 7.2)",
        ),
        (
            "ipa_approval",
            {**DETAILS, "account_kind": "linkedin", "contact_email": "me@dwp.gov.uk"},
            "details.contact_email: LinkedIn accounts must use a personal email address "
            "(policy 5.1)",
        ),
        ("ipa_approval", {**DETAILS, "platform": ""}, "details.platform: required"),
        ("ipa_approval", {**DETAILS, "device": "toaster"}, "details.device: must be one of"),
        ("ipa_approval", ["not", "an", "object"], "details: expected an object"),
        ("rocket_launch", DETAILS, "type: unknown case type 'rocket_launch'"),
    ],
)
async def test_a_refused_intake_starts_and_writes_nothing(
    offline_services: Services, case_type: str, details: Any, message: str
) -> None:
    with pytest.raises(Invalid) as info:
        await service.open_case(
            offline_services, actor=EMPLOYEE, case_type=case_type, details=details
        )
    assert info.value.message.startswith(message)
    assert info.value.status == 422
    assert cast(NoTemporal, offline_services.client).calls == []
    with offline_services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 0
        assert session.scalar(select(func.count()).select_from(CaseCounter)) == 0


async def test_actions_move_the_case_and_every_refusal_is_in_the_audit_trail(
    services: Services,
) -> None:
    case_id = (await open_ipa(services))["id"]
    assert "may not endorse" in await refused(services, Forbidden, OFFICER, case_id, "endorse")
    assert "not allowed in stage 'manager_endorsement'" in await refused(
        services, Conflict, OFFICER, case_id, "approve"
    )
    assert (await refused(services, Invalid, MANAGER, case_id, "decline")).startswith("reason:")
    assert "unknown action" in await refused(services, Invalid, MANAGER, case_id, "fly")

    endorsed = await act(services, MANAGER, case_id, "endorse")
    assert endorsed["stage"] == "sac_review"
    assert endorsed["actions"] == ["comment"]  # the manager's, not the SAC's
    approved = await act(services, OFFICER, case_id, "approve")
    assert (approved["stage"], approved["status"]) == ("active", "open")

    refusals = [
        (d["action"], d["code"]) for k, d in await kinds(services, case_id) if k == "refused"
    ]
    assert refusals == [
        ("endorse", "forbidden"),
        ("approve", "conflict"),
        ("decline", "invalid"),
        ("fly", "invalid"),
    ]
    events = await service.case_events(services, actor=OFFICER, case_id=case_id)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(events))
    first_refusal = next(e for e in events if e["kind"] == "refused")
    assert (first_refusal["actor"], first_refusal["stage"]) == (
        OFFICER.email,
        "manager_endorsement",
    )
    assert ISO_Z.match(first_refusal["at"])


async def test_a_closed_case_refuses_every_action_and_records_the_attempt(
    services: Services,
) -> None:
    case_id = (await open_ipa(services))["id"]
    closed = await act(services, EMPLOYEE, case_id, "withdraw")
    assert (closed["status"], closed["outcome"], closed["actions"]) == ("closed", "withdrawn", [])
    assert await refused(services, Conflict, EMPLOYEE, case_id, "comment", text="hello") == (
        "case is closed"
    )
    # Mail is recorded in the background: look for the refusal, not at the last event.
    assert [d for k, d in await kinds(services, case_id) if k == "refused"] == [
        {"action": "comment", "code": "conflict", "reason": "case is closed"}
    ]


async def test_no_such_case(services: Services) -> None:
    with pytest.raises(NotFound, match="case: no such case IPA-1999-000001"):
        await service.get_case(services, actor=AUDITOR, case_id="IPA-1999-000001")
    with pytest.raises(NotFound):
        await act(services, AUDITOR, "IPA-1999-000001", "comment", text="x")
    with pytest.raises(NotFound):
        await service.case_events(services, actor=AUDITOR, case_id="IPA-1999-000001")


async def test_lists_filter_page_and_count(services: Services) -> None:
    first = (await open_ipa(services, handle="@first"))["id"]
    second = (await open_ipa(services, LONER, handle="@second"))["id"]
    third = (await open_ipa(services, handle="@third"))["id"]
    await act(services, EMPLOYEE, third, "withdraw")

    async def ids(actor: Actor = OFFICER, **filters: Any) -> tuple[list[str], int]:
        items, total = await service.list_cases(services, actor=actor, **filters)
        return [c["id"] for c in items], total

    assert await ids() == ([third, second, first], 3)  # newest first
    assert await ids(limit=1, offset=1) == ([second], 3)
    assert await ids(type="ipa_approval", status="closed") == ([third], 1)
    assert await ids(status="open", stage="sac_review") == ([second], 1)
    assert await ids(MANAGER, assignee="me") == ([first], 1)  # waits on the manager
    assert await ids(assignee="MANAGER@dwp.gov.uk") == ([first], 1)
    assert await ids(q="@SECOND") == ([second], 1)
    assert await ids(q="first " + first.lower()) == ([first], 1)
    assert await ids(q="100%_nothing") == ([], 0)
    assert await ids(overdue=True) == ([], 0)
    assert await ids(team="sac", overdue=False) == ([third, second, first], 3)
    for bad, message in (
        ({"type": "nope"}, "type:"),
        ({"status": "pending"}, "status:"),
        ({"limit": 0}, "limit:"),
        ({"limit": 201}, "limit:"),
        ({"offset": -1}, "offset:"),
    ):
        with pytest.raises(Invalid, match=message):
            await ids(**bad)


def test_case_numbers_never_repeat_under_concurrent_openers(
    sessions: sessionmaker[Session],
) -> None:
    numbers: list[str] = []
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            for _ in range(5):
                with sessions.begin() as session:
                    numbers.append(next_case_id(session, "TST", 2026))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=opener) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(numbers) == [f"TST-2026-{n:06d}" for n in range(1, 41)]
    with sessions.begin() as session:
        assert next_case_id(session, "TST", 2027) == "TST-2027-000001"


# A confidential type, as abuse investigations will be: the sirt role and the named
# investigator see it whole, its reporter (the requester) in outline, anyone else not at all.
SECRET = replace(
    ipa_types.RULES,
    type="secret",
    prefix="SEC",
    team="sirt",
    confidential=True,
    full_viewers=("role:sirt", "role:auditor", "party:investigator"),
)


def _secret(case_id: str, requester: str, investigator: str, at: datetime) -> CaseSnapshot:
    return CaseSnapshot(
        id=case_id,
        type="secret",
        status="open",
        stage="sac_review",
        requester=requester,
        opened_at=at,
        updated_at=at,
        team="sirt",
        details={"perpetrator": "Mallory Example"},
        parties={"requester": requester, "investigator": investigator},
        confidential=True,
    )


@pytest.fixture
def secrets(offline_services: Services, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setitem(CASE_TYPES, "secret", SECRET)
    now = datetime.now(UTC)
    cases = [
        _secret("SEC-1", EMPLOYEE.email, SIRT.email, now - timedelta(hours=2)),
        _secret("SEC-2", LONER.email, OFFICER.email, now - timedelta(hours=1)),
    ]
    with offline_services.sessions.begin() as session:
        for case in cases:
            upsert_case(session, case)
    return [c.id for c in cases]


@pytest.mark.parametrize("who", [SIRT, AUDITOR, OFFICER, EMPLOYEE, LONER, MANAGER])
async def test_confidential_lists_show_and_count_what_the_case_view_allows(
    offline_services: Services, secrets: list[str], who: Actor
) -> None:
    with offline_services.sessions() as session:
        rows = list(session.scalars(select(Case).order_by(Case.opened_at.desc())))
    views = {r.id: view_of(SECRET, snapshot_of(r), who) for r in rows}
    items, total = await service.list_cases(offline_services, actor=who, type="secret")
    assert [i["id"] for i in items] == [i for i, v in views.items() if v is not None]
    assert total == len(items)
    for item in items:
        if views[item["id"]] == "partial":
            assert set(item) == {*PARTIAL_FIELDS, "actions"}
        else:
            assert item["details"] == {"perpetrator": "Mallory Example"}


async def test_an_outline_never_matches_filters_on_what_it_hides(
    offline_services: Services, secrets: list[str]
) -> None:
    async def total(actor: Actor, **filters: Any) -> int:
        return (await service.list_cases(offline_services, actor=actor, **filters))[1]

    assert await total(SIRT, q="mallory") == 2
    assert await total(EMPLOYEE, q="mallory") == 0  # the details are not the reporter's
    assert await total(EMPLOYEE, q="sec-1") == 1
    assert await total(EMPLOYEE, team="sirt") == 0
    assert await total(EMPLOYEE, overdue=False) == 0
    assert await total(EMPLOYEE, stage="sac_review") == 1
    assert await total(MANAGER) == 0


async def test_a_hidden_case_is_not_found_and_an_attempt_on_it_is_recorded(
    offline_services: Services, secrets: list[str]
) -> None:
    svc = offline_services
    with pytest.raises(NotFound, match="no such case SEC-1"):
        await service.get_case(svc, actor=MANAGER, case_id="SEC-1")
    outline = await service.get_case(svc, actor=EMPLOYEE, case_id="SEC-1")
    assert set(outline) == {*PARTIAL_FIELDS, "actions"}
    with pytest.raises(Forbidden):
        await service.case_events(svc, actor=EMPLOYEE, case_id="SEC-1")
    with pytest.raises(NotFound, match="no such case SEC-1"):
        await act(svc, MANAGER, "SEC-1", "comment", text="let me in")
    with svc.sessions() as session:
        event = session.scalars(select(CaseEvent).where(CaseEvent.case_id == "SEC-1")).one()
    assert (event.kind, event.actor, event.data["code"]) == ("refused", MANAGER.email, "forbidden")
    assert cast(NoTemporal, svc.client).calls == []


async def test_a_case_whose_workflow_is_gone_is_closed(
    services: Services, temporal_client: Client
) -> None:
    # The read model still says open, but Temporal has no such workflow (it completed
    # and was purged): the action is refused as on a closed case, and recorded.
    now = datetime.now(UTC)
    case = CaseSnapshot(
        f"IPA-T-{uuid.uuid4().hex[:10]}",
        "ipa_approval",
        "open",
        "sac_review",
        EMPLOYEE.email,
        now,
        now,
    )
    with services.sessions.begin() as session:
        upsert_case(session, case)
    assert await refused(services, Conflict, OFFICER, case.id, "approve") == "case is closed"
    assert [k for k, _ in await kinds(services, case.id)] == ["refused"]


async def test_temporal_out_of_reach_is_503(offline_services: Services) -> None:
    svc = replace(offline_services, client=await Client.connect("127.0.0.1:1", lazy=True))
    with pytest.raises(Unavailable, match=r"^temporal: Failed client connect") as info:
        await open_ipa(svc)
    assert info.value.status == 503


async def test_an_overlong_action_name_is_refused_unrecorded(services: Services) -> None:
    case_id = (await open_ipa(services))["id"]
    with pytest.raises(Invalid, match=r"^action: unknown action"):
        await act(services, EMPLOYEE, case_id, "x" * 41)
    assert "refused" not in [k for k, _ in await kinds(services, case_id)]


def test_temporal_connection_settings(tmp_path: Path, db_url: str) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    base = {"CASEWORK_DATA_DIR": str(tmp_path), "CASEWORK_DATABASE_URL": db_url}
    remote = {**base, "CASEWORK_TEMPORAL_ADDRESS": "temporal.example.org:7233"}
    assert tls_config(Settings.from_env(base)) is False
    assert tls_config(Settings.from_env({**remote, "CASEWORK_TEMPORAL_API_KEY": "k"})) is True
    mtls = tls_config(
        Settings.from_env(
            {
                **remote,
                "CASEWORK_TEMPORAL_TLS_CERT": str(cert),
                "CASEWORK_TEMPORAL_TLS_KEY": str(key),
            }
        )
    )
    assert isinstance(mtls, TLSConfig)
    assert (mtls.client_cert, mtls.client_private_key) == (b"CERT", b"KEY")


# Parties in conflict (`CaseTypeRules.parties_in_conflict`), with the roles that would otherwise
# show them everything: the real investigation and referral tables, read by Python
# (`view_of`) and by SQL (`list_cases`), which must agree case by case.
PERP_LEAD = Actor("perplead@dwp.gov.uk", ["sirt", "sirt_lead", "auditor", "admin"])
PERP_REPORTER = Actor("perpreporter@dwp.gov.uk", ["sirt", "sirt_lead"])
SUBJECT_HR = Actor("subjecthr@dwp.gov.uk", ["hr", "hr_lead", "auditor", "admin"])
HR = Actor("hr@dwp.gov.uk", ["hr"])
CONFLICT_CASES: list[tuple[str, str, str, dict[str, str], dict[str, Any]]] = [
    # id, type, requester, parties beyond the requester, details
    (
        "ABU-C-1",
        "abuse_investigation",
        EMPLOYEE.email,
        {"perpetrator": PERP_LEAD.email},
        {"perpetrator": {"kind": "employee", "email": PERP_LEAD.email}, "platform": "quokka"},
    ),
    (
        "ABU-C-2",
        "abuse_investigation",
        PERP_REPORTER.email,
        {"perpetrator": PERP_REPORTER.email},
        {"perpetrator": {"kind": "employee", "email": PERP_REPORTER.email}, "platform": "quokka"},
    ),
    (  # no perpetrator named: a NULL party must hide the case from nobody
        "ABU-C-3",
        "abuse_investigation",
        EMPLOYEE.email,
        {},
        {"perpetrator": {"kind": "unknown"}, "platform": "quokka"},
    ),
    (
        "DIS-C-1",
        "disciplinary_referral",
        HR.email,
        {"subject": SUBJECT_HR.email},
        {"subject": SUBJECT_HR.email, "breach": "quokka"},
    ),
    (  # an HR person who is only the subject of another referral sees this one whole
        "DIS-C-2",
        "disciplinary_referral",
        HR.email,
        {"subject": EMPLOYEE.email},
        {"subject": EMPLOYEE.email, "breach": "quokka"},
    ),
]


@pytest.fixture
def conflicted_cases(offline_services: Services) -> list[str]:
    now = datetime.now(UTC)
    with offline_services.sessions.begin() as session:
        for n, (case_id, case_type, requester, parties, details) in enumerate(CONFLICT_CASES):
            rules = CASE_TYPES[case_type]
            upsert_case(
                session,
                CaseSnapshot(
                    id=case_id,
                    type=case_type,
                    status="open",
                    stage=rules.stages[-1],
                    requester=requester,
                    opened_at=now - timedelta(minutes=n),
                    updated_at=now,
                    team=rules.team,
                    details=details,
                    parties={"requester": requester, **parties},
                    confidential=True,
                ),
            )
    return [c[0] for c in CONFLICT_CASES]


@pytest.mark.parametrize(
    "who", [PERP_LEAD, PERP_REPORTER, SUBJECT_HR, HR, SIRT, AUDITOR, EMPLOYEE, LONER]
)
@pytest.mark.parametrize(
    "filters",
    [{}, {"q": "quokka"}, {"q": "-c-"}, {"team": "sirt"}, {"team": "hr"}, {"status": "open"}],
)
async def test_python_and_sql_agree_on_what_conflicted_parties_see(
    offline_services: Services,
    conflicted_cases: list[str],
    who: Actor,
    filters: dict[str, Any],
) -> None:
    with offline_services.sessions() as session:
        rows = list(session.scalars(select(Case).order_by(Case.opened_at.desc())))
    views = {r.id: view_of(CASE_TYPES[r.type], snapshot_of(r), who) for r in rows}
    items, total = await service.list_cases(offline_services, actor=who, **filters)
    listed = {i["id"]: i for i in items}
    assert total == len(items)
    for case_id, view in views.items():
        if case_id not in listed:
            continue
        # Listed only as Python would show it: an outline stays an outline.
        shown = listed[case_id]
        assert view is not None, (who.email, case_id)
        assert ("details" in shown) == (view == "whole"), (who.email, case_id)
        if view == "partial":
            assert set(shown) == {*PARTIAL_FIELDS, "actions"}
    # And every case Python shows is listed, unless a filter reads what an outline hides.
    unfiltered = {i["id"] for i in (await service.list_cases(offline_services, actor=who))[0]}
    assert unfiltered == {i for i, v in views.items() if v is not None}


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        # An investigation's perpetrator, however senior, gets 404; reporting it too, the outline.
        (
            PERP_LEAD,
            {"ABU-C-2": "whole", "ABU-C-3": "whole", "DIS-C-1": "whole", "DIS-C-2": "whole"},
        ),
        (PERP_REPORTER, {"ABU-C-1": "whole", "ABU-C-2": "partial", "ABU-C-3": "whole"}),
        # A referral's subject in HR: the outline of their own, the whole of another's.
        (
            SUBJECT_HR,
            {"ABU-C-1": "whole", "ABU-C-2": "whole", "ABU-C-3": "whole"}
            | {"DIS-C-1": "partial", "DIS-C-2": "whole"},
        ),
        (HR, {"DIS-C-1": "whole", "DIS-C-2": "whole"}),
        (EMPLOYEE, {"ABU-C-1": "partial", "ABU-C-3": "partial", "DIS-C-2": "partial"}),
    ],
)
async def test_conflicted_parties_see_what_api_md_allows_them(
    offline_services: Services,
    conflicted_cases: list[str],
    who: Actor,
    expected: dict[str, str],
) -> None:
    items, total = await service.list_cases(offline_services, actor=who)
    seen = {i["id"]: ("whole" if "details" in i else "partial") for i in items}
    assert (seen, total) == (expected, len(expected))
    for case_id in conflicted_cases:
        if case_id in expected:
            case = await service.get_case(offline_services, actor=who, case_id=case_id)
            assert ("details" in case) == (expected[case_id] == "whole")
            if expected[case_id] == "partial":
                assert case["actions"] == []
                with pytest.raises(Forbidden):
                    await service.case_events(offline_services, actor=who, case_id=case_id)
        else:
            with pytest.raises(NotFound):
                await service.get_case(offline_services, actor=who, case_id=case_id)
            with pytest.raises(NotFound):
                await service.case_events(offline_services, actor=who, case_id=case_id)


@pytest.mark.todays("saturday", "winter_weekday")
async def test_a_queue_serves_cases_due_at_once_first_come_first_served(
    services: Services,
) -> None:
    """Opened one after another, three requests are due at the end of the same working day;
    soonest due first puts the oldest first, newest first the newest (ties by id)."""
    opened = [(await open_ipa(services))["id"] for _ in range(3)]
    by_due, _ = await service.list_cases(services, actor=MANAGER, sort="due")
    assert len({case["due_at"] for case in by_due}) == 1  # all due at once
    assert [case["id"] for case in by_due] == opened
    newest, _ = await service.list_cases(services, actor=MANAGER)
    assert [case["id"] for case in newest] == opened[::-1]
    # Paged, the order holds across the pages.
    first, total = await service.list_cases(services, actor=MANAGER, sort="due", limit=2)
    rest, _ = await service.list_cases(services, actor=MANAGER, sort="due", limit=2, offset=2)
    assert total == 3 and [c["id"] for c in first + rest] == opened
