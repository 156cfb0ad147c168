"""Exports for auditors: who may export, what is in them, and a chain a third party can
verify from the export alone (recomputed here with hashlib, and by the standalone
script run in an isolated interpreter)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from activities.records import RecordActivities
from app.cli.main import main
from app.platform.settings import Settings
from app.service import exports, verify_export
from app.service.auth import issue_token
from app.service.services import Services
from tests.app.api.test_api import _client, error_of
from tests.domain.test_records import event, snapshot
from workflows.common import RecordRequest

AUDITOR, EMPLOYEE = "auditor@dwp.gov.uk", "employee@dwp.gov.uk"
IPA, ABU = "IPA-2026-000001", "ABU-2026-000001"
GENESIS = "0" * 64
SCRIPT = Path(verify_export.__file__)


@pytest.fixture
def recorded(sessions: sessionmaker[Session], people: None) -> sessionmaker[Session]:
    """An IPA with 7 events and a confidential investigation with 4, unicode included."""
    acts = RecordActivities(sessions)
    acts.record(
        RecordRequest(
            case=snapshot(id=IPA),
            events=[
                event(f"i{n}", n, data={"n": n, "note": 'café, "quoted"\nline'}) for n in range(7)
            ],
        )
    )
    acts.record(
        RecordRequest(
            case=snapshot(
                id=ABU,
                type="abuse_investigation",
                stage="triage",
                confidential=True,
                details={"category": "trolling", "description": "ünïcode"},
            ),
            events=[
                event(f"a{n}", n, stage="triage", data={"n": [n, 1.5, None]}) for n in range(4)
            ],
        )
    )
    return sessions


@pytest.fixture
async def api(
    offline_services: Services, recorded: sessionmaker[Session]
) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(offline_services):
        yield client


def bearer(sessions: sessionmaker[Session], email: str) -> dict[str, str]:
    with sessions.begin() as session:
        return {"Authorization": f"Bearer {issue_token(session, email)}"}


def independent_hash(row: dict[str, Any]) -> str:
    """The documented recipe, written again here: no Casework code involved."""
    body = {
        k: row[k]
        for k in ("case_id", "seq", "key", "at", "actor", "kind", "stage", "data", "prev_hash")
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def check_chains(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Recompute every chain from the rows alone: events per case."""
    counts: dict[str, int] = {}
    prev: dict[str, str] = {}
    for row in rows:
        n = counts.get(row["case_id"], 0) + 1
        assert row["seq"] == n
        assert row["prev_hash"] == prev.get(row["case_id"], GENESIS)
        assert independent_hash(row) == row["hash"]
        counts[row["case_id"]], prev[row["case_id"]] = n, row["hash"]
    return counts


async def test_only_auditors_and_admins_export(
    api: httpx.AsyncClient, recorded: sessionmaker[Session]
) -> None:
    for what in ("cases", "events"):
        response = await api.get(f"/api/exports/{what}", headers=bearer(recorded, EMPLOYEE))
        assert "may not export" in error_of(response, 403, "forbidden")
        assert (await api.get(f"/api/exports/{what}")).status_code == 401


async def test_bad_filters_are_named(
    api: httpx.AsyncClient, recorded: sessionmaker[Session]
) -> None:
    auth = bearer(recorded, AUDITOR)
    bad = {"format": "xml"}, {"since": "last tuesday"}, {"type": "parking_fine"}
    for params, field in zip(bad, ("format", "since", "type"), strict=True):
        response = await api.get("/api/exports/events", params=params, headers=auth)
        assert error_of(response, 422, "invalid").startswith(f"{field}: ")


async def test_events_jsonl_verify_from_the_export_alone(
    api: httpx.AsyncClient, recorded: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "BATCH", 3)  # several batches, and a boundary mid-case
    response = await api.get(
        "/api/exports/events", params={"format": "jsonl"}, headers=bearer(recorded, AUDITOR)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert "attachment" in response.headers["content-disposition"]
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [r["case_id"] for r in rows] == [ABU] * 4 + [IPA] * 7
    assert check_chains(rows) == {ABU: 4, IPA: 7}
    assert rows[-1]["data"]["note"] == 'café, "quoted"\nline'


async def test_events_csv_verify_and_a_changed_cell_is_caught(
    api: httpx.AsyncClient, recorded: sessionmaker[Session], tmp_path: Path
) -> None:
    auth = bearer(recorded, AUDITOR)
    events = (await api.get("/api/exports/events", params={"format": "csv"}, headers=auth)).text
    cases = (await api.get("/api/exports/cases", params={"format": "csv"}, headers=auth)).text
    rows = list(csv.DictReader(io.StringIO(events)))
    parsed = [
        {**r, "seq": int(r["seq"]), "data": json.loads(r["data"]), "stage": r["stage"] or None}
        for r in rows
    ]
    assert check_chains(parsed) == {ABU: 4, IPA: 7}

    (tmp_path / "events.csv").write_text(events, encoding="utf-8")
    (tmp_path / "cases.csv").write_text(cases, encoding="utf-8")
    ok = _script(tmp_path / "events.csv", "--cases", tmp_path / "cases.csv")
    assert (ok.returncode, ok.stdout.strip()) == (0, "ok: 2 cases, 11 events")

    tampered = events.replace("[3,1.5", "[4,1.5", 1)
    assert tampered != events
    (tmp_path / "events.csv").write_text(tampered, encoding="utf-8")
    broken = _script(tmp_path / "events.csv")
    assert broken.returncode == 1
    assert broken.stderr.strip() == f"broken: {ABU} event 4: hash does not match its contents"


async def test_a_chain_cut_short_shows_against_the_cases_export(
    api: httpx.AsyncClient, recorded: sessionmaker[Session]
) -> None:
    auth = bearer(recorded, AUDITOR)
    events = (await api.get("/api/exports/events", headers=auth)).text.splitlines()
    cases = [
        json.loads(line)
        for line in (await api.get("/api/exports/cases", headers=auth)).text.splitlines()
    ]
    assert {c["id"]: c["last_seq"] for c in cases} == {ABU: 4, IPA: 7}
    cut = [json.loads(line) for line in events[:-1]]  # IPA's last event gone
    report = verify_export.verify_events(cut)
    assert report.ok  # a chain cannot see its own tail go...
    report = verify_export.check_heads(report, cases)
    assert report.problem == f"{IPA}: chain ends at event 6, the case says 7"


async def test_filters_and_a_part_way_chain(
    api: httpx.AsyncClient, recorded: sessionmaker[Session]
) -> None:
    auth = bearer(recorded, AUDITOR)
    only = await api.get(
        "/api/exports/events", params={"type": "abuse_investigation"}, headers=auth
    )
    assert {json.loads(line)["case_id"] for line in only.text.splitlines()} == {ABU}
    # event(key, minutes): the IPA's events 5 to 7 were recorded at 09:04 and later.
    since = await api.get(
        "/api/exports/events", params={"case": IPA, "since": "2026-03-02T09:04:00Z"}, headers=auth
    )
    rows = [json.loads(line) for line in since.text.splitlines()]
    assert [r["seq"] for r in rows] == [5, 6, 7]
    report = verify_export.verify_events(rows)
    assert report.ok and report.anchored == [IPA]
    cases = await api.get(
        "/api/exports/cases", params={"format": "csv", "type": "ipa_approval"}, headers=auth
    )
    assert [r["id"] for r in csv.DictReader(io.StringIO(cases.text))] == [IPA]


def test_cli_exports_to_a_file_and_refuses_others_in_one_line(
    recorded: sessionmaker[Session],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("CASEWORK_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CASEWORK_DATABASE_URL", settings.database_url)
    out = tmp_path / "events.jsonl"
    code = main(["export", "events", "--format", "jsonl", "--out", str(out), "--as", AUDITOR])
    assert code == 0, capsys.readouterr().err
    assert check_chains([json.loads(line) for line in out.read_text().splitlines()]) == {
        ABU: 4,
        IPA: 7,
    }
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    code = main(["export", "cases", "--format", "csv", "--as", AUDITOR])
    printed = capsys.readouterr().out
    assert code == 0 and printed.splitlines()[0].startswith("id,type,status")

    code = main(["export", "cases", "--as", EMPLOYEE, "--out", str(tmp_path / "no.csv")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "may not export" in err
    assert not (tmp_path / "no.csv").exists()


def _script(*args: Path | str) -> subprocess.CompletedProcess[str]:
    """The verifier as a third party runs it: a bare interpreter, no Casework on its path."""
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=SCRIPT.parent.parent.parent,  # anywhere but the project: nothing to import
        check=False,
    )


async def test_an_auditor_does_not_export_a_case_they_are_conflicted_in(
    api: httpx.AsyncClient, recorded: sessionmaker[Session]
) -> None:
    """An alleged perpetrator never sees the case whole, whatever their roles."""
    against_auditor = "ABU-2026-000002"
    RecordActivities(recorded).record(
        RecordRequest(
            case=snapshot(
                id=against_auditor,
                type="abuse_investigation",
                stage="triage",
                confidential=True,
                parties={"perpetrator": AUDITOR},
            ),
            events=[event("x0", 0, stage="triage")],
        )
    )
    auth = bearer(recorded, AUDITOR)
    cases = (await api.get("/api/exports/cases", headers=auth)).text.splitlines()
    assert sorted(json.loads(line)["id"] for line in cases) == [ABU, IPA]
    events = (await api.get("/api/exports/events", headers=auth)).text.splitlines()
    assert {json.loads(line)["case_id"] for line in events} == {ABU, IPA}
