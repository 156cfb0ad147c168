"""`casework audit verify`: tampering with stored events is found and named."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from activities.records import RecordActivities, hash_of
from app.audit import AuditResult, verify
from models import Case, CaseEvent
from tests.activities.test_records import T0, event, snapshot
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
