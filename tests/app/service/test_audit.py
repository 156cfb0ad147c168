"""`casework audit verify`: tampering with stored events is found and named."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from activities.records import RecordActivities
from app.cli.main import main
from app.service.audit import AuditResult, verify
from domain.records import hash_of
from models import Case, CaseEvent
from tests.domain.test_records import T0, event, snapshot
from workflows.common import RecordRequest

A = "IPA-2026-000001"
B = "PEX-2026-000001"


@pytest.fixture
def recorded(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Two cases of five events each."""
    acts = RecordActivities(sessions)
    for case_id in (A, B):
        events = [event(f"{case_id}-{i}", i, data={"n": i}) for i in range(5)]
        acts.record(RecordRequest(case=snapshot(id=case_id), events=events))
    return sessions


def run_verify(sessions: sessionmaker[Session], case_id: str | None = None) -> AuditResult:
    with sessions() as session:
        return verify(session, case_id)


def tamper(sessions: sessionmaker[Session], statement: str, **params: object) -> None:
    with sessions.begin() as session:
        session.execute(text(statement), params)


def test_clean_chains_verify(recorded: sessionmaker[Session]) -> None:
    assert run_verify(recorded) == AuditResult(True, 2, 10, None)
    assert run_verify(recorded, A) == AuditResult(True, 1, 5, None)


def test_edited_data_is_found(recorded: sessionmaker[Session]) -> None:
    with recorded.begin() as session:
        session.execute(
            update(CaseEvent)
            .where(CaseEvent.case_id == A, CaseEvent.seq == 3)
            .values(data={"n": 99}),
            execution_options={"synchronize_session": False},
        )
    result = run_verify(recorded)
    assert not result.ok
    assert result.first_problem == f"{A} event 3: hash does not match its contents"
    # The other case is still intact, alone.
    assert run_verify(recorded, B).ok


def test_edited_actor_is_found(recorded: sessionmaker[Session]) -> None:
    tamper(recorded, "UPDATE case_events SET actor = 'mallory' WHERE case_id = :c AND seq = 2", c=B)
    assert run_verify(recorded).first_problem == f"{B} event 2: hash does not match its contents"


def test_edit_with_a_recomputed_hash_breaks_the_next_link(recorded: sessionmaker[Session]) -> None:
    with recorded.begin() as session:
        row = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == A, CaseEvent.seq == 3)
        ).one()
        row.at = T0 - timedelta(days=1)
        row.hash = hash_of(row)
    assert run_verify(recorded).first_problem == (
        f"{A} event 4: prev_hash does not match event 3's hash"
    )


def test_deleted_event_is_found(recorded: sessionmaker[Session]) -> None:
    tamper(recorded, "DELETE FROM case_events WHERE case_id = :c AND seq = 3", c=A)
    result = run_verify(recorded)
    assert not result.ok
    assert result.first_problem == f"{A} event 3: missing (the next stored event is 4)"


def test_deleted_first_event_is_found(recorded: sessionmaker[Session]) -> None:
    tamper(recorded, "DELETE FROM case_events WHERE case_id = :c AND seq = 1", c=B)
    assert run_verify(recorded, B).first_problem == (
        f"{B} event 1: missing (the next stored event is 2)"
    )


def test_reordered_events_are_found(recorded: sessionmaker[Session]) -> None:
    # Swap seq 2 and 3, through a free seq since (case_id, seq) is unique.
    for old, new in ((2, -1), (3, 2), (-1, 3)):
        tamper(
            recorded,
            "UPDATE case_events SET seq = :new WHERE case_id = :c AND seq = :old",
            c=A,
            old=old,
            new=new,
        )
    assert run_verify(recorded).first_problem == f"{A} event 2: hash does not match its contents"


def test_case_without_events_and_unknown_case(recorded: sessionmaker[Session]) -> None:
    with recorded.begin() as session:
        session.execute(delete(CaseEvent).where(CaseEvent.case_id == B))
    result = run_verify(recorded)
    assert (result.ok, result.first_problem) == (False, f"{B}: case has no events")
    assert run_verify(recorded, A).ok
    assert run_verify(recorded, "IPA-2099-999999") == AuditResult(
        False, 0, 0, "IPA-2099-999999: no such case"
    )


def test_empty_database_verifies(sessions: sessionmaker[Session]) -> None:
    assert run_verify(sessions) == AuditResult(True, 0, 0, None)
    with sessions() as session:
        assert session.scalar(select(Case.id)) is None


# ---- inserted rows, and every kind of tampering through the CLI ----------------------------


def shift_up(sessions: sessionmaker[Session], case_id: str, from_seq: int) -> None:
    """Make room for a row at `from_seq`: later rows move up one, highest first."""
    with sessions() as session:
        seqs = session.scalars(
            select(CaseEvent.seq)
            .where(CaseEvent.case_id == case_id, CaseEvent.seq >= from_seq)
            .order_by(CaseEvent.seq.desc())
        ).all()
    for seq in seqs:
        tamper(
            sessions,
            "UPDATE case_events SET seq = :new WHERE case_id = :c AND seq = :old",
            c=case_id,
            old=seq,
            new=seq + 1,
        )


def forge(sessions: sessionmaker[Session], case_id: str, seq: int, *, good_hash: bool) -> None:
    """Insert a made-up event at `seq`, chained to the row before it; with `good_hash`,
    its own hash computed as the forger would from its contents."""
    with sessions.begin() as session:
        before = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.seq == seq - 1)
        ).one()
        row = CaseEvent(
            case_id=case_id,
            seq=seq,
            key=f"forged-{seq}",
            at=before.at,
            actor="mallory@dwp.gov.uk",
            kind="comment",
            stage=before.stage,
            data={"text": "All agreed"},
            prev_hash=before.hash,
            hash="f" * 64,
        )
        if good_hash:
            row.hash = hash_of(row)
        session.add(row)


def test_an_event_inserted_in_the_middle_is_found(recorded: sessionmaker[Session]) -> None:
    shift_up(recorded, A, 3)
    forge(recorded, A, 3, good_hash=False)
    assert run_verify(recorded).first_problem == f"{A} event 3: hash does not match its contents"


def test_an_inserted_event_with_a_good_hash_breaks_the_row_after_it(
    recorded: sessionmaker[Session],
) -> None:
    shift_up(recorded, A, 3)
    forge(recorded, A, 3, good_hash=True)
    # The old event 3, now 4, hashed its old seq and its old predecessor.
    assert run_verify(recorded).first_problem == f"{A} event 4: hash does not match its contents"


def test_an_event_appended_with_a_made_up_hash_is_found(recorded: sessionmaker[Session]) -> None:
    forge(recorded, B, 6, good_hash=False)
    assert run_verify(recorded).first_problem == f"{B} event 6: hash does not match its contents"


def test_an_event_moved_to_another_case_is_found(recorded: sessionmaker[Session]) -> None:
    tamper(
        recorded,
        "UPDATE case_events SET case_id = :b, seq = 6 WHERE case_id = :a AND seq = 5",
        a=A,
        b=B,
    )
    # A has lost its last event, which no chain can see; B has gained one, which it can.
    assert run_verify(recorded, A).ok
    assert run_verify(recorded).first_problem == f"{B} event 6: hash does not match its contents"


def test_an_edited_timestamp_or_kind_is_found(recorded: sessionmaker[Session]) -> None:
    tamper(recorded, "UPDATE case_events SET kind = 'approve' WHERE case_id = :c AND seq = 4", c=B)
    assert run_verify(recorded).first_problem == f"{B} event 4: hash does not match its contents"
    with recorded.begin() as session:
        row = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == A, CaseEvent.seq == 2)
        ).one()
        row.at = row.at + timedelta(hours=1)
    assert run_verify(recorded).first_problem == f"{A} event 2: hash does not match its contents"


def _edit(s: sessionmaker[Session]) -> None:
    tamper(s, "UPDATE case_events SET data = :d WHERE case_id = :c AND seq = 4", c=B, d='{"n": 0}')


def _delete(s: sessionmaker[Session]) -> None:
    tamper(s, "DELETE FROM case_events WHERE case_id = :c AND seq = 2", c=B)


def _reorder(s: sessionmaker[Session]) -> None:
    for old, new in ((4, -1), (5, 4), (-1, 5)):
        tamper(
            s, "UPDATE case_events SET seq = :n WHERE case_id = :c AND seq = :o", c=B, o=old, n=new
        )


def _insert(s: sessionmaker[Session]) -> None:
    shift_up(s, B, 2)
    forge(s, B, 2, good_hash=True)


TAMPERING = {
    "edit": (_edit, "event 4: hash does not match its contents"),
    "delete": (_delete, "event 2: missing (the next stored event is 3)"),
    "reorder": (_reorder, "event 4: hash does not match its contents"),
    "insert": (_insert, "event 3: hash does not match its contents"),
}


@pytest.mark.parametrize("kind", TAMPERING)
def test_casework_audit_verify_names_the_first_bad_event(
    kind: str,
    recorded: sessionmaker[Session],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CASEWORK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CASEWORK_DATABASE_URL", db_url)
    assert main(["audit", "verify"]) == 0
    assert capsys.readouterr().out == "ok: 2 cases, 10 events\n"
    change, problem = TAMPERING[kind]
    change(recorded)
    assert main(["audit", "verify"]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"casework: audit: {B} {problem}\n")
    # One case's check names it too; the untouched case still verifies.
    assert main(["audit", "verify", B]) == 1
    assert capsys.readouterr().err == f"casework: audit: {B} {problem}\n"
    assert main(["audit", "verify", A]) == 0
