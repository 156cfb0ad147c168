"""One authorisation table, role x action x stage x confidentiality, driving every API
endpoint, CLI command and staff page on real cases (time-skipping Temporal, real
worker): an IPA and a policy exception (open to all), an abuse investigation and a
disciplinary referral (confidential, each with a party who sees only the outline), in
every stage their journeys reach, on SQLite and on PostgreSQL.

The table is the hand-written one the rules tests check the rules against
(`tests/workflows/test_*_rules.py`: who may take which action in which stage, who
sees a confidential case how); here each cell is asked of the surfaces people use:

- the API: `GET /api/cases/{id}` (seen whole, in outline, or 404; its `actions` are
  exactly the table's), `GET /api/cases` (listed or not), `GET .../events` (200, 403,
  404) and `POST .../actions` with every action the person may NOT take (404 for a case
  hidden from them, 409 when nobody may take it in this stage, else 403);
- the CLI: `casework cases show`, `list` and `act` as that person, answering what the
  API answers, word for word;
- the staff pages (`authz_pages.py`), each person signed in with their own token as a
  browser would: the case page (404, outline or whole) and the action forms it offers,
  the case on their work page or not, refused forms POSTed (the API's status, leaving
  only a `refused` record in the audit trail), allowed forms POSTed without the CSRF
  token (403) or over the body limit (413) changing nothing, evidence downloads, the
  new-case forms, and at the end the dashboard and the mail page.

The journey itself is walked through the pages: each case opened with the new-case
form, then one allowed action per stage POSTed through its form (accepted, 303) by the
person the table says may, and an investigation's evidence uploaded through the case
page. The SQLite run POSTs every refusal to the API and asks the CLI too; the pages and
the PostgreSQL run POST a covering sample (`authz_pages.refusals_to_post`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from app import service
from app.cli.main import main
from app.runtime.mailcatcher import MailCatcher
from app.service.people import import_people
from app.service.services import Services
from tests.app.authz_pages import (
    EVIDENCE,
    observe_dashboard_and_mail,
    observe_new_case,
    observe_pages,
    pages_for,
    refusals_to_post,
)
from tests.app.investigations import DETAILS as ABU_DETAILS
from tests.app.investigations import bearer, http_client
from tests.workflows import test_exception_rules as pex_table
from tests.workflows import test_investigation_rules as abu_table
from tests.workflows import test_ipa_rules as ipa_table
from tests.workflows import test_referral_rules as dis_table
from workflows import exception_types as pex
from workflows import investigation_types as abu
from workflows import ipa_types as ipa
from workflows import referral_types as dis
from workflows.common import Actor
from workflows.rules import CaseTypeRules


@dataclass(frozen=True)
class Table:
    """One case type's rows: who sees it how, and who may take what in each stage."""

    rules: CaseTypeRules
    people: dict[str, Actor]
    actions: dict[str, dict[str, set[str]]]  # stage -> person -> actions
    default: Callable[[str], set[str]]  # a person a stage's row does not name
    views: dict[str, str | None]  # person -> "whole" | "partial" | None (404)
    # Where a stage changes how someone sees the case: stage -> person -> view.
    stage_views: dict[str, dict[str, str | None]] = field(default_factory=dict)
    openers: frozenset[str] | None = None  # who may open one; None: anyone

    def may_open(self, person: str) -> bool:
        return self.openers is None or person in self.openers

    def view(self, stage: str, person: str) -> str | None:
        return self.stage_views.get(stage, {}).get(person, self.views[person])

    def may(self, stage: str, person: str) -> set[str]:
        return self.actions[stage].get(person, self.default(person))

    def anyone_may(self, stage: str, action: str) -> bool:
        return any(action in self.may(stage, p) for p in self.people)


TABLES = {
    "ipa_approval": Table(
        ipa.RULES,
        ipa_table.PEOPLE,
        ipa_table.EXPECTED,
        ipa_table.default_actions,
        ipa_table.VIEWS,  # need to know: requester, their chain, SAC, auditor, admin
    ),
    "abuse_investigation": Table(
        abu.RULES,
        abu_table.PEOPLE,
        abu_table.EXPECTED,
        lambda p: set(),
        abu_table.VIEWS,  # confidential
    ),
    "policy_exception": Table(
        pex.RULES,
        pex_table.PEOPLE,
        pex_table.EXPECTED,
        pex_table.default_actions,
        pex_table.VIEWS,  # need to know, as an IPA
    ),
    "disciplinary_referral": Table(
        dis.RULES,
        dis_table.PEOPLE,
        dis_table.EXPECTED,
        lambda p: set(),
        dis_table.SEES,  # confidential
        {},
        # Only HR refers (test_only_hr_opens_a_referral); the caseworker is in HR.
        frozenset({"hr", "hr_lead", "caseworker"}),
    ),
}
MANAGERS = {
    "employee@dwp.gov.uk": "manager@dwp.gov.uk",
    "reporter@dwp.gov.uk": "manager@dwp.gov.uk",
    # The requester's manager's manager: in their management chain (need to know).
    "manager@dwp.gov.uk": "director@dwp.gov.uk",
}


def use_directory_of(sessions: sessionmaker[Session], table: Table) -> None:
    """The directory holds the table's people with the table's roles (roles are read
    from the directory at every request)."""
    rows = ["email,name,manager_email,roles"]
    emails = {actor.email for actor in table.people.values()}
    for name, actor in table.people.items():
        manager = MANAGERS.get(actor.email, "")
        manager = manager if manager in emails else ""
        rows.append(f"{actor.email},{name.title()},{manager},{';'.join(actor.roles)}")
    with sessions.begin() as session:
        import_people(session, "\n".join(rows) + "\n")


# ---- what each surface owes a person, from the table -------------------------------------


def post_status(table: Table, stage: str, person: str, action: str) -> int:
    if table.view(stage, person) is None:
        return 404
    return 403 if table.anyone_may(stage, action) else 409


@dataclass
class Probe:
    """The API and the CLI, as any person."""

    api: httpx.AsyncClient
    auth: dict[str, dict[str, str]]  # email -> Authorization header
    tmp: Path

    async def get(self, email: str, path: str, **params: Any) -> httpx.Response:
        return await self.api.get(path, headers=self.auth[email], params=params)

    async def post(self, email: str, case_id: str, action: str) -> httpx.Response:
        body = {"action": action}
        return await self.api.post(
            f"/api/cases/{case_id}/actions", json=body, headers=self.auth[email]
        )

    async def cli(self, *argv: str) -> tuple[int, str, str]:
        out, err = self.tmp / "out", self.tmp / "err"
        # In a thread: `main` runs its own event loop, and the worker needs this one.
        code = await asyncio.to_thread(_run_cli, list(argv), out, err)
        return code, out.read_text(), err.read_text()


def _run_cli(argv: list[str], out: Path, err: Path) -> int:
    import contextlib

    with (
        out.open("w") as o,
        err.open("w") as e,
        contextlib.redirect_stdout(o),
        contextlib.redirect_stderr(e),
    ):
        return main(argv)


Observed = dict[tuple[str, ...], Any]
Refusals = set[tuple[str, str]]  # (person, action)


async def observe_api(
    probe: Probe, table: Table, stage: str, case_id: str, only: Refusals | None = None
) -> tuple[Observed, Observed]:
    """(what the table says, what the API answered) for every person and endpoint; every
    refused action POSTed, or those of `only`."""
    want: Observed = {}
    got: Observed = {}
    for person, actor in table.people.items():
        email, view = actor.email, table.view(stage, person)
        allowed = table.may(stage, person)
        response = await probe.get(email, f"/api/cases/{case_id}")
        want[person, "get"] = (200, sorted(allowed)) if view else (404, None)
        body = response.json()
        got[person, "get"] = (
            response.status_code,
            sorted(body["actions"]) if response.status_code == 200 else None,
        )
        listed = (await probe.get(email, "/api/cases", q=case_id)).json()
        want[person, "list"] = [case_id] if view else []
        got[person, "list"] = [c["id"] for c in listed["items"]]
        events = await probe.get(email, f"/api/cases/{case_id}/events")
        want[person, "events"] = {"whole": 200, "partial": 403, None: 404}[view]
        got[person, "events"] = events.status_code
        for action in table.rules.by_name:
            if action in allowed or (only is not None and (person, action) not in only):
                continue
            answer = await probe.post(email, case_id, action)
            want[person, "act", action] = post_status(table, stage, person, action)
            got[person, "act", action] = answer.status_code
    return want, got


async def observe_cli(
    probe: Probe, table: Table, stage: str, case_id: str
) -> tuple[Observed, Observed]:
    """The CLI as every person: `show`, `list`, and `act` with every action they may not
    take, each refusal word for word the API's."""
    empty = probe.tmp / "empty.json"
    empty.write_text("{}")
    want: Observed = {}
    got: Observed = {}
    for person, actor in table.people.items():
        email, view = actor.email, table.view(stage, person)
        allowed = table.may(stage, person)
        code, out, err = await probe.cli("cases", "show", case_id, "--as", email)
        want[person, "show"] = (
            (0, sorted(allowed)) if view else (1, f"casework: case: no such case {case_id}\n")
        )
        got[person, "show"] = (
            (code, sorted(json.loads(out)["actions"])) if code == 0 else (code, err)
        )
        code, out, _ = await probe.cli("cases", "list", "--q", case_id, "--as", email)
        want[person, "list"] = [case_id] if view else []
        got[person, "list"] = [c["id"] for c in json.loads(out)["items"]] if code == 0 else code
        for action in table.rules.by_name:
            if action in allowed:
                continue
            api = (await probe.post(email, case_id, action)).json()["error"]["message"]
            code, out, err = await probe.cli(
                "cases", "act", case_id, action, "--json", str(empty), "--as", email
            )
            want[person, "act", action] = (1, f"casework: {api}\n")
            got[person, "act", action] = (code, err)
    return want, got


# ---- the cases, driven stage by stage ----------------------------------------------------


@dataclass(frozen=True)
class Step:
    """An action the table allows, taken through its form on the case page."""

    person: str
    action: str
    fields: dict[str, Any]


def act_as(table: Table, person: str, action: str, **fields: Any) -> Step:
    assert table.people[person]  # a person of this table
    return Step(person, action, fields)


IPA, ABU, DIS = (
    TABLES[t] for t in ("ipa_approval", "abuse_investigation", "disciplinary_referral")
)
IPA_DETAILS = {
    "account_kind": "individual_professional",
    "platform": "LinkedIn",
    "handle": "@employee",
    "justification": "Recruitment events",
    "device": "dwp_managed",
    "contact_email": "employee@example.com",
}
# Per case type: who opens it with what, then (step into the stage, the stage) in order.
JOURNEYS: dict[str, tuple[str, dict[str, Any], list[tuple[Step | None, str]]]] = {
    "ipa_approval": (
        "requester",
        IPA_DETAILS,
        [
            (None, ipa.MANAGER_ENDORSEMENT),
            (act_as(IPA, "manager", "endorse"), ipa.SAC_REVIEW),
            (act_as(IPA, "sac", "request_info", question="Which events?"), ipa.AWAITING_INFO),
            (act_as(IPA, "requester", "provide_info", answer="Fairs"), ipa.SAC_REVIEW),
            (act_as(IPA, "sac", "approve"), ipa.ACTIVE),
        ],
    ),
    "abuse_investigation": (
        "reporter",
        ABU_DETAILS,
        [
            (None, abu.TRIAGE),
            (
                act_as(ABU, "sirt_lead", "assign", investigator="investigator@dwp.gov.uk"),
                abu.INVESTIGATION,
            ),
            (
                act_as(
                    ABU,
                    "investigator",
                    "conclude",
                    finding="unsubstantiated",
                    summary="No",
                    refer=False,
                ),
                abu.REVIEW,
            ),
        ],
    ),
}
PEX = TABLES["policy_exception"]
JOURNEYS["policy_exception"] = (
    "requester",
    {
        "policy_section": "5.1",
        "requirement": "Use a managed device",
        "justification": "Field work",
        "risk": "Low",
        "compensating_controls": "MFA",
        "duration_days": 90,
    },
    [
        (None, pex.TRIAGE),
        (act_as(PEX, "sac", "request_info", question="Which device?"), pex.AWAITING_INFO),
        (act_as(PEX, "requester", "provide_info", answer="A phone"), pex.TRIAGE),
        (act_as(PEX, "sac", "accept"), pex.RISK_ASSESSMENT),
        (
            act_as(PEX, "assessor", "submit_assessment", risk_rating="low", assessment="Fine"),
            pex.DECISION,
        ),
        (act_as(PEX, "sac_lead", "approve"), pex.ACTIVE),
    ],
)
JOURNEYS["disciplinary_referral"] = (
    "hr",
    {
        "subject": "subject@dwp.gov.uk",
        "breach": "Posted case details online",
        "policy_sections": "6.2",
        "criminal_consideration": False,
    },
    [
        (None, dis.HR_REVIEW),
        (act_as(DIS, "hr", "accept", caseworker="caseworker@dwp.gov.uk"), dis.HEARING),
        (
            act_as(
                DIS, "caseworker", "record_outcome", outcome="first_written_warning", reason="R"
            ),
            dis.APPEAL_WINDOW,
        ),
        (act_as(DIS, "subject", "appeal", grounds="Too harsh"), dis.APPEAL),
    ],
)
# The stage at which the CLI is asked too (each CLI call starts a process's worth of set-up).
CLI_STAGE = {
    "ipa_approval": ipa.SAC_REVIEW,
    "abuse_investigation": abu.INVESTIGATION,
    "disciplinary_referral": dis.APPEAL_WINDOW,
    "policy_exception": pex.DECISION,
}


# Where an evidence file is uploaded through the case page's form, and by whom.
UPLOADS = {("abuse_investigation", abu.INVESTIGATION): "investigator"}


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[tuple[MailCatcher, int]]:
    """The embedded stack's mail catcher in place of the sink: the workflows' mail kept in
    the data directory, where the mail page reads it."""
    with MailCatcher(tmp_path) as catcher:
        yield catcher, catcher.port


@pytest.mark.parametrize("case_type", sorted(JOURNEYS))
async def test_every_cell_of_the_table_on_every_surface(
    case_type: str,
    services: Services,
    temporal_client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = TABLES[case_type]
    use_directory_of(services.sessions, table)
    # The CLI connects on its own: to the test server, the test's database and queue.
    monkeypatch.setenv(
        "CASEWORK_TEMPORAL_ADDRESS", temporal_client.service_client.config.target_host
    )
    monkeypatch.setenv("CASEWORK_TASK_QUEUE", services.settings.task_queue)
    monkeypatch.setenv("CASEWORK_DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("CASEWORK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CASEWORK_SMTP_HOST", "127.0.0.1")
    # Which person may do what is decided the same way whatever the database; what differs
    # is how cases are found (the SQL of lists and searches), which every read asks. So
    # on SQLite every refusal is POSTed to the API and the CLI is asked too; on
    # PostgreSQL, the same covering sample of refusals as the pages'.
    exhaustive = make_url(services.settings.database_url).get_backend_name() == "sqlite"
    opener, details, journey = JOURNEYS[case_type]
    emails = [a.email for a in table.people.values()]
    auth = bearer(services.sessions, *emails)
    want: Observed = {}
    got: Observed = {}

    def record(prefix: tuple[str, ...], observed: tuple[Observed, Observed]) -> None:
        want.update({(*prefix, *k): v for k, v in observed[0].items()})
        got.update({(*prefix, *k): v for k, v in observed[1].items()})

    async for api in http_client(services):
        async for pages in pages_for(services, emails):
            record(("new",), await observe_new_case(pages, table, case_type, details))
            case_id = await pages.open_case(table.people[opener].email, case_type, details)
            probe = Probe(api, auth, tmp_path)
            for n, (step, stage) in enumerate(journey):
                if step is not None:
                    email = table.people[step.person].email
                    await pages.act(email, case_id, step.action, step.fields)
                shown = await service.get_case(
                    services, actor=table.people["admin"], case_id=case_id
                )
                assert shown["stage"] == stage
                if uploader := UPLOADS.get((case_type, stage)):
                    stored = await pages.upload(table.people[uploader].email, case_id, EVIDENCE)
                    assert stored.status_code == 303, stored.text[-2000:]
                    pages.evidence[case_id] = hashlib.sha256(EVIDENCE).hexdigest()
                at = (f"{n}:{stage}",)

                def refused(person: str, action: str, stage: str = stage) -> int:
                    return post_status(table, stage, person, action)

                only = None if exhaustive else refusals_to_post(table, stage, refused)
                record((*at, "api"), await observe_api(probe, table, stage, case_id, only))
                record((*at, "pages"), await observe_pages(pages, table, stage, case_id, refused))
                if (
                    exhaustive
                    and stage == CLI_STAGE[case_type]
                    and not any(k[1] == "cli" for k in want)
                ):
                    record((*at, "cli"), await observe_cli(probe, table, stage, case_id))
            record(("end",), await observe_dashboard_and_mail(pages, table))
    # Cell by cell, so a failure names the stage, the person, the surface and the action.
    assert {k: v for k, v in got.items() if want.get(k) != v} == {}
    assert want.keys() == got.keys()
    # The CLI was asked, at a stage the journey reached.
    assert any(k[1] == "cli" for k in want) == exhaustive


def test_the_table_covers_every_action_and_stage_it_claims_to() -> None:
    """Every action of each type is either allowed somewhere in the table or refused
    everywhere, and every stage the journeys reach has a row."""
    for case_type, (_, _, journey) in JOURNEYS.items():
        table = TABLES[case_type]
        stages = {stage for _, stage in journey}
        assert stages <= set(table.actions), case_type
        covered = set().union(*(table.may(s, p) for s in stages for p in table.people))
        assert covered, case_type


# ---- who a case may be given to (API.md: reassign, assign, accept) ----------------------


@dataclass(frozen=True)
class Assignment:
    """An assigning action at a stage: who takes it, whom it may name, whom it may not."""

    case_type: str
    opener: str
    details: dict[str, Any]
    steps: list[Step]  # into the stage
    assigner: str
    action: str
    field: str
    eligible: set[str]
    refused: dict[str, str]  # email -> the reason the 422 names


ASSIGNMENTS = [
    Assignment(
        "ipa_approval",
        "requester",
        IPA_DETAILS,
        [act_as(IPA, "manager", "endorse")],
        "sac_lead",
        "reassign",
        "assignee",
        {"officer@dwp.gov.uk", "saclead@dwp.gov.uk"},
        {
            "nobody@example.com": "is not in the directory",
            "manager@dwp.gov.uk": "does not hold the role sac this stage needs",
            "sirt@dwp.gov.uk": "does not hold the role sac this stage needs",
        },
    ),
    Assignment(
        "policy_exception",
        "requester",
        JOURNEYS["policy_exception"][1],
        [
            act_as(PEX, "sac", "accept"),
            act_as(PEX, "assessor", "submit_assessment", risk_rating="low", assessment="Fine"),
        ],
        "sac_lead",
        "reassign",
        "assignee",
        {"saclead@dwp.gov.uk"},  # a decision only a lead may take: only a lead
        {"officer@dwp.gov.uk": "does not hold the role sac_lead this stage needs"},
    ),
    Assignment(
        "abuse_investigation",
        "reporter",
        # The alleged perpetrator and one target are in SIRT: parties, whatever their role.
        {
            **ABU_DETAILS,
            "perpetrator": {"kind": "employee", "email": "sirt@dwp.gov.uk"},
            "targets": ["investigator@dwp.gov.uk"],
        },
        [],
        "sirt_lead",
        "assign",
        "investigator",
        {"sirtlead@dwp.gov.uk"},
        {
            "outsider@example.com": "is not in the directory",
            "hr@dwp.gov.uk": "does not hold the role sirt this stage needs",
            "sirt@dwp.gov.uk": "is the perpetrator of",
            "investigator@dwp.gov.uk": "is among the targets of",
        },
    ),
    Assignment(
        "disciplinary_referral",
        "hr_lead",
        {**JOURNEYS["disciplinary_referral"][1], "subject": "hr@dwp.gov.uk"},
        [],
        "hr_lead",
        "accept",
        "caseworker",
        {"hrlead@dwp.gov.uk", "caseworker@dwp.gov.uk"},
        {
            "officer@dwp.gov.uk": "does not hold the role hr this stage needs",
            "hr@dwp.gov.uk": "is the subject of",
        },
    ),
]


def picker_options(page: httpx.Response, action: str, field: str) -> set[str]:
    """The people a case page's picker offers for `action`'s `field`."""
    html = page.text
    start = html.index(f'id="action-{action}-{field}"')
    return set(re.findall(r'<option value="([^"]+)"', html[start : html.index("</select>", start)]))


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=lambda a: a.case_type)
async def test_a_case_is_given_only_to_someone_the_stage_may_have(
    assignment: Assignment, services: Services
) -> None:
    """The picker offers exactly the eligible people; the API refuses anyone else with 422
    naming the reason, recording the refused attempt and changing nothing; an eligible
    person is accepted."""
    a = assignment
    table = TABLES[a.case_type]
    use_directory_of(services.sessions, table)
    people = table.people
    opened = await service.open_case(
        services,
        actor=await service.actor_for(services, email=people[a.opener].email),
        case_type=a.case_type,
        details=a.details,
    )
    case_id = opened["id"]
    for step in a.steps:
        await service.act(
            services,
            actor=await service.actor_for(services, email=people[step.person].email),
            case_id=case_id,
            action=step.action,
            fields=step.fields,
        )
    assigner = people[a.assigner].email
    eligible = await service.eligible_assignees(
        services,
        actor=await service.actor_for(services, email=assigner),
        case_id=case_id,
        action=a.action,
    )
    assert {p["email"] for p in eligible} == a.eligible
    auth = bearer(services.sessions, assigner)
    async for pages in pages_for(services, [assigner]):
        page = await pages.browser(assigner).get(f"/cases/{case_id}")
        assert picker_options(page, a.action, a.field) == a.eligible
        before = await pages.state(case_id)
        async for api in http_client(services):
            for email, reason in a.refused.items():
                answer = await api.post(
                    f"/api/cases/{case_id}/actions",
                    json={"action": a.action, a.field: email},
                    headers=auth[assigner],
                )
                assert answer.status_code == 422, (email, answer.text)
                message = answer.json()["error"]["message"]
                assert message.startswith(f"{a.field}: {email} {reason}"), message
            assert await pages.state(case_id) == before
            refused = [e for e in await pages.events_after(case_id, 0) if e[1] == "refused"]
            assert refused == [(assigner, "refused", a.action)] * len(a.refused)
            chosen = sorted(a.eligible)[0]
            done = await api.post(
                f"/api/cases/{case_id}/actions",
                json={"action": a.action, a.field: chosen},
                headers=auth[assigner],
            )
            assert done.status_code == 200, done.text
            assert done.json()["assignee"] == chosen
