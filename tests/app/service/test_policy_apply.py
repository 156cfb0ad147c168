"""`casework policy apply FILE [--dry-run]`: a new policy reaches every open case, over
the real service layer, worker and time-skipping server."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import WorkflowEnvironment

from app import service
from app.cli.main import main
from app.platform.settings import DEFAULT_POLICY_FILE
from app.service.policy_apply import apply_policy
from app.service.services import Services
from domain.calendar import WorkingCalendar
from domain.policy import load_policy, parse_policy
from models import Case, CaseEvent
from workflows.common import Actor

EMPLOYEE = Actor("employee@dwp.gov.uk", [])
MANAGER = Actor("manager@dwp.gov.uk", [])
DETAILS = {
    "account_kind": "individual_professional",
    "platform": "X",
    "handle": "@jo",
    "justification": "Outreach",
    "device": "dwp_managed",
    "contact_email": "jo@dwp.gov.uk",
}
SHIPPED = Path(DEFAULT_POLICY_FILE).read_text(encoding="utf-8")
# The manager's endorsement (the first "3wd"/"2wd" pair) given five working days.
LONGER = SHIPPED.replace('sla = "3wd"\nremind = "2wd"', 'sla = "5wd"\nremind = "2wd"', 1)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def open_three(services: Services) -> tuple[str, str, str]:
    """Two open IPAs (one at the manager, one at the SAC) and a withdrawn one."""
    ids = []
    for _ in range(3):
        case = await service.open_case(
            services, actor=EMPLOYEE, case_type="ipa_approval", details=DETAILS
        )
        ids.append(case["id"])
    await service.act(services, actor=MANAGER, case_id=ids[1], action="endorse", fields={})
    await service.act(services, actor=EMPLOYEE, case_id=ids[2], action="withdraw", fields={})
    return ids[0], ids[1], ids[2]


def rows(sessions: sessionmaker[Session]) -> dict[str, Case]:
    with sessions() as session:
        return {c.id: c for c in session.scalars(select(Case))}


def changes(sessions: sessionmaker[Session]) -> list[CaseEvent]:
    with sessions() as session:
        query = select(CaseEvent).where(CaseEvent.kind == "policy_changed")
        return list(session.scalars(query.order_by(CaseEvent.case_id)))


async def test_a_dry_run_lists_what_would_move_then_applying_moves_it(
    services: Services, tmp_path: Path
) -> None:
    at_manager, at_sac, withdrawn = await open_three(services)
    before = rows(services.sessions)
    new = load_policy(write(tmp_path, "new.toml", LONGER))
    assert new.version != services.policy.version

    dry = await apply_policy(services, policy=new, dry_run=True)
    assert sorted(m.case_id for m in dry) == [at_manager, at_sac]  # open cases only
    (moved,) = [m for m in dry if m.moves]
    opened = before[at_manager].opened_at
    assert (moved.case_id, moved.stage) == (at_manager, "manager_endorsement")
    assert moved.old_due == before[at_manager].due_at == WorkingCalendar().add(opened, "3wd")
    assert moved.new_due == WorkingCalendar().add(opened, "5wd")
    assert [m.outcome for m in dry if m.case_id == at_sac] == ["unchanged"]
    # Nothing written anywhere by asking.
    assert rows(services.sessions)[at_manager].policy_version == services.policy.version
    assert changes(services.sessions) == []

    applied = await apply_policy(services, policy=new, dry_run=False)
    assert {(m.case_id, m.outcome, m.new_due) for m in applied} == {
        (at_manager, "moved", moved.new_due),
        (at_sac, "unchanged", before[at_sac].due_at),
    }
    after = rows(services.sessions)
    assert after[at_manager].due_at == moved.new_due
    assert {after[i].policy_version for i in (at_manager, at_sac)} == {new.version}
    assert after[withdrawn].policy_version == services.policy.version
    recorded = changes(services.sessions)
    assert [e.case_id for e in recorded] == sorted([at_manager, at_sac])
    assert all(e.data["to_version"] == new.version for e in recorded)

    # Applying it again tells no case anything new.
    again = await apply_policy(services, policy=new, dry_run=False)
    assert {m.outcome for m in again} == {"current"}
    assert len(changes(services.sessions)) == 2


async def test_a_case_under_an_older_policy_still_opens_under_the_loaded_one(
    services: Services, tmp_path: Path
) -> None:
    """Applying changes open cases; a new case opens under what the process loaded."""
    new = load_policy(write(tmp_path, "new.toml", LONGER))
    await apply_policy(services, policy=new, dry_run=False)
    case = await service.open_case(
        services, actor=EMPLOYEE, case_type="ipa_approval", details=DETAILS
    )
    assert rows(services.sessions)[case["id"]].policy_version == services.policy.version
    later = replace(services, policy=new)
    case = await service.open_case(later, actor=EMPLOYEE, case_type="ipa_approval", details=DETAILS)
    assert rows(services.sessions)[case["id"]].policy_version == new.version


def test_a_malformed_policy_is_one_line_naming_the_key_and_tells_no_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASEWORK_DATA_DIR", str(tmp_path))
    bad = write(tmp_path, "bad.toml", LONGER.replace('sla = "5wd"', 'sla = "five days"', 1))
    assert main(["policy", "apply", str(bad), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "sla.ipa_approval.manager_endorsement.sla: 'five days' is not a duration" in err
    holiday = write(
        tmp_path,
        "holiday.toml",
        SHIPPED.replace(
            'bank_holidays = "GB-ENG"', 'bank_holidays = "GB-ENG"\nextra_holidays = ["2026-13-01"]'
        ),
    )
    assert main(["policy", "apply", str(holiday)]) == 1
    assert "calendar.extra_holidays: '2026-13-01' is not an ISO date" in capsys.readouterr().err


async def test_the_command_line_dry_run_then_apply(
    services: Services,
    time_skipping_env: WorkflowEnvironment,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    at_manager, _, _ = await open_three(services)
    settings = services.settings
    target = time_skipping_env.client.service_client.config.target_host
    for name, value in {
        "CASEWORK_DATA_DIR": str(settings.data_dir),
        "CASEWORK_DATABASE_URL": settings.database_url,
        "CASEWORK_TEMPORAL_ADDRESS": target,
        "CASEWORK_TEMPORAL_NAMESPACE": time_skipping_env.client.namespace,
    }.items():
        monkeypatch.setenv(name, value)
    path = str(write(tmp_path, "new.toml", LONGER))
    new = parse_policy(LONGER)

    code = await _in_thread(["policy", "apply", path, "--dry-run"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert len(out) == 2 and out[0].startswith(f"{at_manager} manager_endorsement: due ")
    assert out[1] == f"dry run: 1 of 2 open cases would move under policy {new.version[:12]}"
    assert changes(services.sessions) == []

    code = await _in_thread(["policy", "apply", path])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert f"policy {new.version[:12]}: 2 open cases now under it, 1 due times moved" in out
    assert len(changes(services.sessions)) == 2


async def _in_thread(argv: list[str]) -> int:
    """`main` runs its own event loop: off this test's loop, which the worker runs on."""
    import asyncio

    return await asyncio.to_thread(main, argv)
