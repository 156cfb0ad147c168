"""Verifies the hash chains of case events: edited, deleted or reordered rows show up.

A hash chain cannot see its own last events deleted; that is why a case row with no
events at all is reported too (every case is recorded with its `opened` event).

An event redacted by retention (`domain.retention`) keeps the hash of what it was; that
hash cannot be recomputed, but its links are checked as any other's, and it counts
only in a chain that records the redaction in a later `anonymised` event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, exists, select
from sqlalchemy.orm import Session

from app.service.cases import get_case
from app.service.errors import Forbidden, NotFound
from app.service.services import Services
from domain.records import GENESIS_HASH, hash_of
from domain.retention import ANONYMISED, is_redacted
from domain.views import may_export
from models import Case, CaseEvent
from workflows.common import Actor


@dataclass(frozen=True)
class AuditResult:
    ok: bool
    cases_checked: int
    events_checked: int
    first_problem: str | None = None


def _event_problem(event: Row[Any], expected_seq: int, prev_hash: str) -> str | None:
    where = f"{event.case_id} event {expected_seq}"
    if event.seq > expected_seq:
        return f"{where}: missing (the next stored event is {event.seq})"
    if event.seq < expected_seq:
        return f"{event.case_id} event {event.seq}: out of sequence (expected {expected_seq})"
    if is_redacted(event.data):
        recomputed = event.hash  # the commitment to what was there: see the docstring
    else:
        try:
            recomputed = hash_of(event)
        except (TypeError, ValueError) as exc:
            return f"{where}: contents cannot be hashed ({exc})"
    if recomputed != event.hash:
        return f"{where}: hash does not match its contents"
    if event.prev_hash != prev_hash:
        if expected_seq == 1:
            return f"{where}: prev_hash is not the genesis hash"
        return f"{where}: prev_hash does not match event {expected_seq - 1}'s hash"
    return None


def _check_chains(rows: Iterable[Row[Any]]) -> tuple[int, int, str | None]:
    """(cases, events, first problem) over rows ordered by case id, then seq."""
    cases = events = 0
    case_id: str | None = None
    expected_seq, prev_hash = 1, GENESIS_HASH
    unrecorded: str | None = None  # the first redacted event no `anonymised` event covers yet
    for row in rows:
        if row.case_id != case_id:
            if unrecorded:
                return cases, events, unrecorded
            case_id, expected_seq, prev_hash = row.case_id, 1, GENESIS_HASH
            cases += 1
        events += 1
        problem = _event_problem(row, expected_seq, prev_hash)
        if problem is not None:
            return cases, events, problem
        if is_redacted(row.data):
            unrecorded = unrecorded or (
                f"{row.case_id} event {row.seq}: redacted, and no later anonymised event says so"
            )
        elif row.kind == ANONYMISED:
            unrecorded = None
        expected_seq, prev_hash = expected_seq + 1, row.hash
    return cases, events, unrecorded


def verify(session: Session, case_id: str | None = None) -> AuditResult:
    """Recompute every case's (or one case's) chain in seq order; stops at the first problem."""
    query = select(
        CaseEvent.case_id,
        CaseEvent.seq,
        CaseEvent.key,
        CaseEvent.at,
        CaseEvent.actor,
        CaseEvent.kind,
        CaseEvent.stage,
        CaseEvent.data,
        CaseEvent.prev_hash,
        CaseEvent.hash,
    ).order_by(CaseEvent.case_id, CaseEvent.seq)
    if case_id is not None:
        query = query.where(CaseEvent.case_id == case_id)
    # Streamed in batches: the whole log need not fit in memory.
    rows = session.execute(query.execution_options(yield_per=1000))
    cases, events, problem = _check_chains(rows)
    rows.close()
    if problem is not None:
        return AuditResult(False, cases, events, problem)

    empty = select(Case.id).where(~exists().where(CaseEvent.case_id == Case.id))
    if case_id is not None:
        empty = empty.where(Case.id == case_id)
    first_empty = session.scalar(empty.order_by(Case.id).limit(1))
    if first_empty is not None:
        return AuditResult(False, cases + 1, events, f"{first_empty}: case has no events")
    if case_id is not None and cases == 0:
        return AuditResult(False, 0, 0, f"{case_id}: no such case")
    return AuditResult(True, cases, events)


async def verify_case(svc: Services, *, actor: Actor, case_id: str) -> AuditResult:
    """One case's chain checked for a person, as `casework audit verify ID` checks it: for
    auditors and administrators (`domain.views.may_export`, as for exports; 403 for
    anyone else), on a case they see whole (404 for one they may not, a party to it
    included)."""
    if not may_export(actor):
        raise Forbidden(
            f"actor: {actor.email} may not verify audit trails (auditors and administrators only)"
        )
    case = await get_case(svc, actor=actor, case_id=case_id)
    if "details" not in case:  # the outline only: a party to it, never its auditor
        raise NotFound(f"case: no such case {case_id}")
    return await svc.run(lambda session: verify(session, case_id))
