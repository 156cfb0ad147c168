"""The read model's writer: case rows and the append-only, hash-chained event log.

The chain's hash rule (`event_hash`, `hash_of`, `GENESIS_HASH`) is here, beside the
writer that applies it, for `app.service.audit` to recompute; the `record` activity
(`activities.records`), the service layer's refusals and retention all write through
`append_events` and `upsert_case`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Select, Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from domain.times import iso_exact
from models import Case, CaseEscalation, CaseEvent
from workflows.common import CaseSnapshot, EventIn

GENESIS_HASH = "0" * 64

T = TypeVar("T")


def _utc(at: datetime) -> datetime:
    # astimezone() would silently read a naive time as the machine's local time.
    if at.tzinfo is None:
        raise ValueError("naive datetime: event times must be timezone-aware")
    return at.astimezone(UTC)


def _canonical(value: Any) -> str:
    # allow_nan=False: NaN is not JSON and PostgreSQL would refuse it anyway.
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def event_hash(
    *,
    case_id: str,
    seq: int,
    key: str,
    at: datetime,
    actor: str,
    kind: str,
    stage: str | None,
    data: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """sha256 hex of the event's canonical JSON; app.service.audit recomputes it the same way."""
    body = {
        "case_id": case_id,
        "seq": seq,
        "key": key,
        "at": iso_exact(at),
        "actor": actor,
        "kind": kind,
        "stage": stage,
        "data": dict(data),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(_canonical(body).encode("utf-8")).hexdigest()


class StoredEvent(Protocol):
    """A stored event: a `CaseEvent`, or a row of its columns (as `audit verify` streams)."""

    case_id: str
    seq: int
    key: str
    at: datetime
    actor: str
    kind: str
    stage: str | None
    data: dict[str, Any]
    prev_hash: str


def hash_of(event: StoredEvent) -> str:
    """The hash a stored event should carry, from its stored contents."""
    return event_hash(
        case_id=event.case_id,
        seq=event.seq,
        key=event.key,
        at=event.at,
        actor=event.actor,
        kind=event.kind,
        stage=event.stage,
        data=event.data,
        prev_hash=event.prev_hash,
    )


_CASES = cast(Table, Case.__table__)
_EVENTS = cast(Table, CaseEvent.__table__)

# Statements built once and executed on the session's connection with parameters: built
# and run through the ORM for every call, their construction, cache keys and unit of
# work cost several times the database's own work (bench/RESULTS.md, target 6).
_LOCK_SQLITE = (
    update(_CASES).where(_CASES.c.id == bindparam("case_id")).values(version=_CASES.c.version)
)
_LOCK_ROW = select(_CASES.c.id).where(_CASES.c.id == bindparam("case_id")).with_for_update()
_INSERT_EVENTS = insert(_EVENTS)


def _lock_case(session: Session, case_id: str) -> None:
    """Serialise writers of one case's chain before reading its last event.

    PostgreSQL locks the case row. SQLite has one database-wide write lock, taken by
    the first write of a transaction, so a no-op write takes it now; without it two
    writers could both read the same last seq. Either way the unique constraint on
    (case_id, seq) remains the guarantee; this only makes the race rare.
    """
    connection = session.connection()
    lock = _LOCK_SQLITE if connection.dialect.name == "sqlite" else _LOCK_ROW
    connection.execute(lock, {"case_id": case_id})


@functools.cache
def _stored_or_last(key_count: int) -> Select[tuple[int, str, str]]:
    """The events already stored under `key_count` keys, and the last event of the chain.

    `key = ? OR ...` rather than an expanding `IN`, whose SQL is rendered again on every
    execution (a transition has a few keys); one statement per count, built once.
    """
    last_seq = select(func.max(_EVENTS.c.seq)).where(_EVENTS.c.case_id == bindparam("case_id"))
    matches = [_EVENTS.c.key == bindparam(f"key_{i}") for i in range(key_count)]
    matches.append(_EVENTS.c.seq == last_seq.scalar_subquery())
    return select(_EVENTS.c.seq, _EVENTS.c.hash, _EVENTS.c.key).where(
        _EVENTS.c.case_id == bindparam("case_id"), or_(*matches)
    )


def append_events(session: Session, case_id: str, events: Sequence[EventIn]) -> list[CaseEvent]:
    """Append each event once, keyed by (case_id, key); returns the events appended now.

    An event whose key is already stored (a retry) is skipped. The caller commits. A
    concurrent writer that took the same seq makes this insert or that commit fail on
    (case_id, seq) or (case_id, key): retry the whole transaction (append_events_retrying).
    The rows are written with Core statements: the returned `CaseEvent`s are not in the
    session.
    """
    if not events:
        return []
    _lock_case(session, case_id)
    keys = sorted({e.key for e in events})
    # One round trip, while the case is locked: the events already stored under these
    # keys, and the last event of the chain (both indexed by their unique constraints).
    params = {"case_id": case_id, **{f"key_{i}": key for i, key in enumerate(keys)}}
    connection = session.connection()
    rows = connection.execute(_stored_or_last(len(keys)), params).all()
    stored = {row.key for row in rows if row.key in keys}
    last = max(rows, key=lambda row: row.seq, default=None)
    seq, prev_hash = (last.seq, last.hash) if last is not None else (0, GENESIS_HASH)

    appended: list[CaseEvent] = []
    for e in events:
        if e.key in stored:
            continue
        stored.add(e.key)
        seq += 1
        # Through JSON and back: what is hashed is exactly what the database gives back.
        data = json.loads(_canonical(e.data))
        row = CaseEvent(
            case_id=case_id,
            seq=seq,
            key=e.key,
            at=_utc(e.at),
            actor=e.actor,
            kind=e.kind,
            stage=e.stage,
            data=data,
            prev_hash=prev_hash,
        )
        row.hash = hash_of(row)
        prev_hash = row.hash
        appended.append(row)
    if appended:
        columns = ("case_id", "seq", "key", "at", "actor", "kind", "stage", "data")
        connection.execute(
            _INSERT_EVENTS,
            [
                {**{c: getattr(r, c) for c in columns}, "prev_hash": r.prev_hash, "hash": r.hash}
                for r in appended
            ],
        )
    return appended


def search_text(snapshot: CaseSnapshot) -> str:
    words = [
        snapshot.id,
        snapshot.type,
        snapshot.requester,
        snapshot.assignee,
        snapshot.stage,
        snapshot.outcome,
    ]
    words += [v for v in snapshot.details.values() if isinstance(v, str)]
    return " ".join(w for w in words if w).lower()


def _row_values(snapshot: CaseSnapshot) -> dict[str, Any]:
    return {
        "type": snapshot.type,
        "status": snapshot.status,
        "stage": snapshot.stage,
        "outcome": snapshot.outcome,
        "requester": snapshot.requester,
        "assignee": snapshot.assignee,
        "team": snapshot.team,
        "owner": snapshot.owner,
        "due_at": snapshot.due_at,
        "overdue": snapshot.overdue,
        "escalation_level": snapshot.escalation_level,
        "opened_at": snapshot.opened_at,
        "updated_at": snapshot.updated_at,
        "closed_at": snapshot.closed_at,
        "details": dict(snapshot.details),
        "links": [{"id": link.id, "relation": link.relation} for link in snapshot.links],
        "parties": dict(snapshot.parties),
        "policy_version": snapshot.policy_version,
        "confidential": snapshot.confidential,
        "search_text": search_text(snapshot),
    }


# Every column a snapshot may write (all but the key and the version), to compare.
_STORED_CASE = select(*(c for c in _CASES.c if c.name not in ("id", "version"))).where(
    _CASES.c.id == bindparam("case_id")
)
_STORED_CASE_LOCKED = _STORED_CASE.with_for_update()
_INSERT_CASE = insert(_CASES)
# The new values come as parameters named after their columns.
_UPDATE_CASE = (
    update(_CASES).where(_CASES.c.id == bindparam("case_id")).values(version=_CASES.c.version + 1)
)


def upsert_case(session: Session, snapshot: CaseSnapshot) -> bool:
    """Insert or update the case row from the snapshot, bumping `version` when it changes.

    The workflow's updated_at only moves forward, so a stored row with a later one came
    from a newer snapshot, which a delayed retry must not undo. Writing the same
    snapshot again changes nothing, not even `version`. Written with Core statements, as
    `append_events` is: a `Case` already loaded in the session is not refreshed. False
    when the stored row is newer (and so left as it is).
    """
    values = _row_values(snapshot)
    connection = session.connection()
    # SQLite has no row locks: its write lock is taken by the write below.
    query = _STORED_CASE if connection.dialect.name == "sqlite" else _STORED_CASE_LOCKED
    stored = connection.execute(query, {"case_id": snapshot.id}).first()
    if stored is None:
        connection.execute(_INSERT_CASE, {"id": snapshot.id, "version": 1, **values})
    elif stored.updated_at > snapshot.updated_at:
        return False
    elif any(getattr(stored, name) != value for name, value in values.items()):
        connection.execute(_UPDATE_CASE, {"case_id": snapshot.id, **values})
    return True


_ESCALATIONS = cast(Table, CaseEscalation.__table__)


def record_escalations(session: Session, snapshot: CaseSnapshot, events: Sequence[EventIn]) -> None:
    """Keep `case_escalations` ("Escalated to me") with the case row: whoever each
    `escalated` event reached, while the escalation lasts; nobody once it ends (the
    stage moved on, its clock restarted, or the case closed). Call it only with a
    snapshot `upsert_case` wrote (not an older one)."""
    connection = session.connection()
    if snapshot.status != "open" or not snapshot.escalation_level:
        connection.execute(delete(_ESCALATIONS).where(_ESCALATIONS.c.case_id == snapshot.id))
        return
    for event in events:
        to = event.data.get("to") if event.kind == "escalated" else None
        if not isinstance(to, str) or not to:
            continue
        known = connection.execute(
            select(_ESCALATIONS.c.email).where(
                _ESCALATIONS.c.case_id == snapshot.id, _ESCALATIONS.c.email == to
            )
        ).first()
        if known is None:
            connection.execute(
                insert(_ESCALATIONS).values(
                    case_id=snapshot.id,
                    email=to,
                    level=int(event.data.get("level") or snapshot.escalation_level),
                    at=_utc(event.at),
                )
            )


def in_transaction_retrying(
    factory: sessionmaker[Session], work: Callable[[Session], T], attempts: int = 5
) -> T:
    """Run `work` in a fresh transaction, again on a lost race (unique key, lock, deadlock)."""
    for attempt in range(1, attempts + 1):
        try:
            with factory.begin() as session:
                return work(session)
        except (IntegrityError, OperationalError):
            if attempt == attempts:
                raise
            # Jitter, so writers that collided do not collide again in step.
            time.sleep(random.uniform(0, 0.01 * attempt))
    raise AssertionError("unreachable")


def append_events_retrying(
    factory: sessionmaker[Session],
    case_id: str,
    events: Sequence[EventIn],
    attempts: int = 5,
) -> list[CaseEvent]:
    """append_events in its own transaction, retried if another writer took the seq."""
    return in_transaction_retrying(factory, lambda s: append_events(s, case_id, events), attempts)
