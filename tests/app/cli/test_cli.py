"""`casework`: the commands of API.md, their JSON, and one-line failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from app import service
from app.cli.main import main
from app.platform.settings import Settings
from app.service.auth import issue_token, person_for_token
from app.service.errors import Unauthorized
from app.service.services import Services
from domain.calendar import WorkingCalendar
from domain.records import append_events, upsert_case
from models import CaseEvent
from workflows.common import CaseSnapshot, EventIn

PEOPLE = """email,name,manager_email,roles
boss@dwp.gov.uk,Boss,,sac;sac_lead
jo@dwp.gov.uk,Jo,boss@dwp.gov.uk,
"""
LONDON = ZoneInfo("Europe/London")
MANAGER = "manager@dwp.gov.uk"
DETAILS = {
    "account_kind": "individual_professional",
    "platform": "X",
    "handle": "@jo",
    "justification": "Outreach",
    "device": "dwp_managed",
    "contact_email": "jo@dwp.gov.uk",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Path:
    """The settings `casework` reads: the test database, nothing embedded started."""
    for name, value in {
        "CASEWORK_DATA_DIR": str(tmp_path),
        "CASEWORK_DATABASE_URL": db_url,
        "CASEWORK_SMTP_HOST": "127.0.0.1",
    }.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_failure(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code != 0
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("casework: ")
    return err.removeprefix("casework: ").rstrip("\n")


def test_migrate_import_people_and_issue_a_token(
    env: Path, capsys: pytest.CaptureFixture[str], sessions: sessionmaker[Session]
) -> None:
    assert run(capsys, "migrate")[0] == 0
    people = write(env, "people.csv", PEOPLE)
    assert run(capsys, "people", "import", people) == (0, "created 2, updated 0\n", "")
    assert run(capsys, "people", "import", people) == (0, "created 0, updated 0\n", "")
    code, token, _ = run(capsys, "users", "token", "jo@dwp.gov.uk")
    assert code == 0
    with sessions() as session:
        person = person_for_token(session, token.strip())
        assert person is not None and person.email == "jo@dwp.gov.uk"


def test_failures_are_one_line(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "people", "import", write(env, "people.csv", PEOPLE))[0] == 0
    cases = ("cases", "open", "ipa_approval", "--as", "jo@dwp.gov.uk", "--json")
    checks = {
        ("people", "import", str(env / "missing.csv")): (
            f"{env / 'missing.csv'}: No such file or directory"
        ),
        ("people", "import", write(env, "bad.csv", "email,name,manager_email,roles\nx,X,,\n")): (
            "line 2: email: 'x' is not an email address"
        ),
        ("users", "token", "nobody@dwp.gov.uk"): "email: no such person nobody@dwp.gov.uk",
        (
            *cases,
            write(env, "personal.json", json.dumps({**DETAILS, "account_kind": "personal"})),
        ): ("details.account_kind: personal accounts need no approval (policy 5.1)"),
        (*cases, write(env, "broken.json", "{")): (
            f"{env / 'broken.json'}: not valid JSON (Expecting property name enclosed in "
            "double quotes, line 1)"
        ),
        ("cases", "list", "--as", "ghost@dwp.gov.uk"): "as: no such person ghost@dwp.gov.uk",
        ("cases", "show", "IPA-1999-000001", "--as", "jo@dwp.gov.uk"): (
            "case: no such case IPA-1999-000001"
        ),
        ("cases", "list", "--as", "jo@dwp.gov.uk", "--limit", "0"): (
            "limit: must be between 1 and 200"
        ),
        ("cases", "list"): (
            "the following arguments are required: --as (see casework cases list --help)"
        ),
    }
    for argv, message in checks.items():
        assert one_line_failure(run(capsys, *argv)) == message, argv

    monkeypatch.setenv("CASEWORK_HTTP_PORT", "eighty")
    assert one_line_failure(run(capsys, "migrate")) == (
        "CASEWORK_HTTP_PORT: must be a whole number 1-65535"
    )
    monkeypatch.delenv("CASEWORK_HTTP_PORT")
    monkeypatch.setenv("CASEWORK_POLICY_FILE", write(env, "policy.toml", "[sla\n"))
    assert "the policy file is not valid TOML" in one_line_failure(
        run(capsys, "cases", "list", "--as", "jo@dwp.gov.uk")
    )


def test_audit_verify_names_the_first_broken_event(
    env: Path, capsys: pytest.CaptureFixture[str], sessions: sessionmaker[Session]
) -> None:
    now = datetime.now(UTC)
    case = CaseSnapshot(
        "IPA-2026-000009", "ipa_approval", "open", "sac_review", "jo@x.org", now, now
    )
    with sessions.begin() as session:
        upsert_case(session, case)
        append_events(
            session,
            case.id,
            [EventIn(f"e{n}", "comment", "jo@x.org", now, "sac_review", {"n": n}) for n in (1, 2)],
        )
    assert run(capsys, "audit", "verify") == (0, "ok: 1 cases, 2 events\n", "")
    assert run(capsys, "audit", "verify", case.id)[0] == 0
    with sessions.begin() as session:
        session.execute(
            update(CaseEvent).where(CaseEvent.seq == 2).values(data={"n": 3}),
            execution_options={"synchronize_session": False},
        )
    assert one_line_failure(run(capsys, "audit", "verify")) == (
        "audit: IPA-2026-000009 event 2: hash does not match its contents"
    )


Cli = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def cli(
    services: Services,
    temporal_client: Client,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    """`await cli(*argv)` -> (exit status, stdout, stderr) of `casework` against the test's
    server and worker."""
    # The CLI connects on its own: to the test server, with the test's worker's queue.
    monkeypatch.setenv(
        "CASEWORK_TEMPORAL_ADDRESS", temporal_client.service_client.config.target_host
    )
    monkeypatch.setenv("CASEWORK_TASK_QUEUE", services.settings.task_queue)

    async def run_cli(*argv: str) -> tuple[int, str, str]:
        # In a thread: `main` runs its own event loop, and the worker needs this one.
        code = await asyncio.to_thread(main, list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run_cli


async def test_cases_commands_run_as_the_named_person(cli: Cli, env: Path) -> None:
    details = write(env, "details.json", json.dumps({**DETAILS, "contact_email": "jo@example.com"}))
    code, out, err = await cli(
        "cases", "open", "ipa_approval", "--json", details, "--as", "employee@dwp.gov.uk"
    )
    assert (code, err) == (0, "")
    case = json.loads(out)
    assert (case["stage"], case["requester"]) == ("manager_endorsement", "employee@dwp.gov.uk")

    code, out, _ = await cli("cases", "act", case["id"], "endorse", "--as", "manager@dwp.gov.uk")
    assert (code, json.loads(out)["stage"]) == (0, "sac_review")
    comment = write(env, "comment.json", '{"text": "On it"}')
    code, out, _ = await cli(
        "cases", "act", case["id"], "comment", "--json", comment, "--as", "officer@dwp.gov.uk"
    )
    assert code == 0
    assert one_line_failure(
        await cli("cases", "act", case["id"], "approve", "--as", "employee@dwp.gov.uk")
    ) == (f"actor: employee@dwp.gov.uk may not approve {case['id']}")

    code, out, _ = await cli("cases", "show", case["id"], "--as", "officer@dwp.gov.uk")
    assert json.loads(out)["actions"] == ["approve", "reject", "request_info", "comment"]
    code, out, _ = await cli(
        "cases", "list", "--as", "officer@dwp.gov.uk", "--stage", "sac_review", "--no-overdue"
    )
    listed = json.loads(out)
    assert (listed["total"], [c["id"] for c in listed["items"]]) == (1, [case["id"]])


@pytest.mark.todays("winter_weekday", "summer_weekday", "clocks_go_back")
async def test_a_person_reads_a_case_with_its_due_time_in_london_time(
    cli: Cli, env: Path, today: datetime
) -> None:
    details = write(env, "details.json", json.dumps({**DETAILS, "contact_email": "jo@example.com"}))
    opened = "cases", "open", "ipa_approval", "--json", details, "--as", "employee@dwp.gov.uk"
    code, out, _ = await cli(*opened)
    assert code == 0
    case = json.loads(out)  # not a terminal: JSON, as scripts read it
    opened_at = datetime.fromisoformat(case["opened_at"])
    assert abs(opened_at - today) < timedelta(minutes=1)  # opened on the chosen day
    due = WorkingCalendar().add(opened_at, "3wd")
    assert case["due_at"] == due.isoformat().replace("+00:00", "Z")  # the API keeps UTC

    code, out, _ = await cli("cases", "show", case["id"], "--format", "table", "--as", MANAGER)
    assert code == 0
    season = "BST" if due.astimezone(LONDON).dst() else "GMT"
    shown = due.astimezone(LONDON)
    assert f"Due            {shown:%a} {shown.day} {shown:%b %Y}, 17:00 {season}\n" in out
    assert "Stage          manager endorsement\n" in out and "You may        endorse," in out

    code, out, _ = await cli("cases", "list", "--format", "table", "--as", MANAGER)
    assert code == 0
    header, row, count = out.splitlines()
    assert header.split() == ["ID", "Type", "Stage", "Due", "Service", "level"]
    assert row.startswith(case["id"]) and f"17:00 {season}" in row and count == "1 of 1 case"


@pytest.mark.parametrize("command", ["up", "worker", "web"])
def test_the_serving_commands_run_the_stack(
    env: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    from app.runtime import stack

    ran: list[Settings] = []

    async def fake(settings: Settings) -> int:
        ran.append(settings)
        return 3

    monkeypatch.setattr(stack, f"run_{command}", fake)
    assert main([command]) == 3
    assert [s.data_dir for s in ran] == [env.resolve()]


async def test_people_deactivate_moves_the_leavers_work_and_refuses_their_token(
    cli: Cli, env: Path, services: Services
) -> None:
    details = write(env, "details.json", json.dumps({**DETAILS, "contact_email": "jo@example.com"}))
    code, out, _ = await cli(
        "cases", "open", "ipa_approval", "--json", details, "--as", "employee@dwp.gov.uk"
    )
    case = json.loads(out)
    token = await services.run(lambda s: issue_token(s, MANAGER))
    code, out, err = await cli("people", "deactivate", MANAGER)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{MANAGER}: deactivated, 1 tokens revoked",
        f"{case['id']}: party:requester_manager",
    ]
    assert (
        one_line_failure(await cli("cases", "show", case["id"], "--as", MANAGER))
        == f"as: {MANAGER} has been deactivated"
    )
    with pytest.raises(Unauthorized):
        await service.authenticate(services, token=token)
    code, out, _ = await cli("cases", "show", case["id"], "--as", "ceo@dwp.gov.uk")
    assert "endorse" in json.loads(out)["actions"]
    assert one_line_failure(await cli("people", "deactivate", "nobody@dwp.gov.uk")) == (
        "email: no such person nobody@dwp.gov.uk"
    )
