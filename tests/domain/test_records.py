"""The record activity: case rows, and an event log each event enters once, hash-chained."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.records import RecordActivities
from app.service.audit import verify
from domain import records
from domain.records import GENESIS_HASH, append_events_retrying, event_hash, in_transaction_retrying
from models import Case, CaseEvent
from workflows.common import CaseSnapshot, EventIn, Link, RecordRequest

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CASE_ID = "IPA-2026-000001"


def snapshot(**changes: object) -> CaseSnapshot:
    base = CaseSnapshot(
        id=CASE_ID,
        type="ipa_approval",
        status="open",
        stage="manager_endorsement",
        requester="Alice@Example.org",
        opened_at=T0,
        updated_at=T0,
        owner="manager@example.org",
        due_at=T0 + timedelta(days=3),
        details={"platform": "LinkedIn", "handle": "@Alice", "device": "personal", "n": 3},
        parties={"requester_manager": "manager@example.org"},
        policy_version="2026-01",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def event(key: str, minutes: int = 0, **changes: object) -> EventIn:
    base = EventIn(
        key=key,
        kind="comment",
        actor="alice@example.org",
        at=T0 + timedelta(minutes=minutes),
        stage="manager_endorsement",
        data={"text": f"event {key}", "café": "ünïcode"},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def stored_events(sessions: sessionmaker[Session], case_id: str = CASE_ID) -> list[CaseEvent]:
    with sessions() as session:
        query = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
        return list(session.scalars(query))


def stored_case(sessions: sessionmaker[Session], case_id: str = CASE_ID) -> Case:
    with sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case


def test_record_is_idempotent_under_retry(engine: Engine, sessions: sessionmaker[Session]) -> None:
    acts = RecordActivities(engine)
    req = RecordRequest(case=snapshot(), events=[event("opened", kind="opened"), event("c1", 1)])
    env = ActivityEnvironment()
    env.run(acts.record, req)
    first_case, first_events = stored_case(sessions), stored_events(sessions)
    env.run(acts.record, req)
    acts.record(req)

    again = stored_case(sessions)
    assert again.version == first_case.version == 1
    assert [(e.seq, e.key, e.hash) for e in stored_events(sessions)] == [
        (e.seq, e.key, e.hash) for e in first_events
    ]
    assert [e.key for e in first_events] == ["opened", "c1"]

    # A later record appends after the stored events, skipping the ones already there.
    later = RecordRequest(
        case=snapshot(updated_at=T0 + timedelta(minutes=5)),
        events=[event("c1", 1), event("c2", 2), event("c2", 2)],
    )
    acts.record(later)
    assert [(e.seq, e.key) for e in stored_events(sessions)] == [
        (1, "opened"),
        (2, "c1"),
        (3, "c2"),
    ]
    assert stored_case(sessions).version == 2


def test_seq_and_hash_chain(sessions: sessionmaker[Session]) -> None:
    RecordActivities(sessions).record(RecordRequest(case=snapshot()))
    # An event time in another zone is stored, and hashed, as the same UTC instant.
    paris = timezone(timedelta(hours=1))
    events = [event(f"e{i}", i) for i in range(4)] + [
        event("tz", at=datetime(2026, 3, 2, 11, 0, tzinfo=paris))
    ]
    appended = append_events_retrying(sessions, CASE_ID, events)
    assert [e.seq for e in appended] == [1, 2, 3, 4, 5]

    stored = stored_events(sessions)
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5]
    assert stored[0].prev_hash == GENESIS_HASH
    for before, after in pairwise(stored):
        assert after.prev_hash == before.hash
    for e in stored:
        assert e.hash == event_hash(
            case_id=e.case_id,
            seq=e.seq,
            key=e.key,
            at=e.at,
            actor=e.actor,
            kind=e.kind,
            stage=e.stage,
            data=e.data,
            prev_hash=e.prev_hash,
        )
    assert stored[4].at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert stored[0].data == {"text": "event e0", "café": "ünïcode"}
    assert len({e.hash for e in stored}) == 5

    # Appending nothing new appends nothing.
    assert append_events_retrying(sessions, CASE_ID, events[:2]) == []


def test_hash_depends_on_every_field() -> None:
    fields: dict[str, Any] = {
        "case_id": CASE_ID,
        "seq": 1,
        "key": "k",
        "at": T0,
        "actor": "a@example.org",
        "kind": "comment",
        "stage": None,
        "data": {"x": 1},
        "prev_hash": GENESIS_HASH,
    }
    original = event_hash(**fields)
    changed = {
        "case_id": "IPA-2026-000002",
        "seq": 2,
        "key": "k2",
        "at": T0 + timedelta(microseconds=1),
        "actor": "b@example.org",
        "kind": "note",
        "stage": "sac_review",
        "data": {"x": 2},
        "prev_hash": "1" * 64,
    }
    for name, value in changed.items():
        assert event_hash(**{**fields, name: value}) != original, name
    # Key order in data is not content.
    swapped = event_hash(**{**fields, "data": {"b": 1, "a": 2}})
    assert swapped == event_hash(**{**fields, "data": {"a": 2, "b": 1}})
    with pytest.raises(ValueError, match="naive"):
        event_hash(**{**fields, "at": datetime(2026, 1, 1)})


@pytest.mark.parametrize("locked", [True, False], ids=["with-lock", "without-lock"])
def test_concurrent_appends_to_one_case(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, locked: bool
) -> None:
    """Threads race for the next seq; each event lands once, the chain stays whole.

    Without the case lock every collision is left to the unique constraint and retry.
    """
    if not locked:
        monkeypatch.setattr(records, "_lock_case", lambda session, case_id: None)
    RecordActivities(sessions).record(RecordRequest(case=snapshot()))
    threads, per_thread = 6, 5

    def writer(n: int) -> None:
        for i in range(per_thread):
            # Every thread also tries to write the same "shared" event: it lands once.
            batch = [event(f"t{n}-{i}", i), event("shared")]
            append_events_retrying(sessions, CASE_ID, batch, attempts=50)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(writer, n) for n in range(threads)]:
            future.result()

    stored = stored_events(sessions)
    assert [e.seq for e in stored] == list(range(1, threads * per_thread + 2))
    assert sorted(e.key for e in stored) == sorted(
        [f"t{n}-{i}" for n in range(threads) for i in range(per_thread)] + ["shared"]
    )
    with sessions() as session:
        assert verify(session).ok


def test_duplicate_seq_is_refused_and_retried(sessions: sessionmaker[Session]) -> None:
    RecordActivities(sessions).record(RecordRequest(case=snapshot(), events=[event("a")]))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        first = stored_events(sessions)[0]
        session.add(
            CaseEvent(
                case_id=CASE_ID,
                seq=1,
                key="other",
                at=T0,
                actor="x",
                kind="comment",
                data={},
                prev_hash=GENESIS_HASH,
                hash=first.hash,
            )
        )

    calls: list[int] = []

    def lose_twice(session: Session) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise IntegrityError("INSERT", {}, Exception("lost the race"))
        return "done"

    assert in_transaction_retrying(sessions, lose_twice) == "done"
    assert len(calls) == 3

    def always_lose(session: Session) -> None:
        raise IntegrityError("INSERT", {}, Exception("lost the race"))

    with pytest.raises(IntegrityError):
        in_transaction_retrying(sessions, always_lose, attempts=2)


def test_upsert_updates_every_field(sessions: sessionmaker[Session]) -> None:
    acts = RecordActivities(sessions)
    acts.record(RecordRequest(case=snapshot()))
    first = stored_case(sessions)
    assert first.version == 1
    assert first.search_text == (
        "ipa-2026-000001 ipa_approval alice@example.org manager_endorsement"
        " linkedin @alice personal"
    )

    t1 = T0 + timedelta(days=2)
    newer = snapshot(
        status="closed",
        stage="closed",
        outcome="declined",
        assignee="sac1@example.org",
        team="sac",
        owner=None,
        due_at=None,
        overdue=True,
        escalation_level=2,
        updated_at=t1,
        closed_at=t1,
        details={"platform": "X", "reason": "Not Needed"},
        links=[Link(id="PEX-2026-000001", relation="exception")],
        parties={"requester_manager": "boss@example.org"},
        policy_version="2026-02",
        confidential=True,
    )
    acts.record(RecordRequest(case=newer))
    row = stored_case(sessions)
    assert (row.status, row.stage, row.outcome) == ("closed", "closed", "declined")
    assert (row.assignee, row.team, row.owner, row.due_at) == (
        "sac1@example.org",
        "sac",
        None,
        None,
    )
    assert (row.overdue, row.escalation_level, row.confidential) == (True, 2, True)
    assert (row.updated_at, row.closed_at, row.opened_at) == (t1, t1, T0)
    assert row.details == {"platform": "X", "reason": "Not Needed"}
    assert row.links == [{"id": "PEX-2026-000001", "relation": "exception"}]
    assert row.parties == {"requester_manager": "boss@example.org"}
    assert row.policy_version == "2026-02"
    assert row.search_text == (
        "ipa-2026-000001 ipa_approval alice@example.org sac1@example.org closed declined"
        " x not needed"
    )
    assert row.version == 2

    # A delayed retry of the older snapshot does not undo the newer one.
    acts.record(RecordRequest(case=snapshot(), events=[event("late")]))
    row = stored_case(sessions)
    assert (row.stage, row.version) == ("closed", 2)
    assert [e.key for e in stored_events(sessions)] == ["late"]
