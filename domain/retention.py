"""Retention of closed cases: what the policy file's `[retention.<type>]` says must go.

`keep` (ISO-8601, from the case's closing) then `action`:

- **anonymise**: the case row keeps its id, type, status, outcome, stage, links and
  dates; details, parties, requester, assignee, owner and search text are blanked.
  Every event keeps its seq, key, time, kind, stage, `hash` and `prev_hash`; its
  `data` becomes the redaction marker `{"_redacted": "anonymised"}` and a person
  actor becomes `"redacted"`. Then an `anonymised` event is appended, chained as
  usual, naming the rule and how many events were redacted.
- **purge**: the case row is blanked as above and its events deleted; a new chain
  of one `purged` event (from the genesis hash) records the rule, how many events
  went, and the old chain's head (seq and hash), so an export taken before still
  matches what was there.

Why `casework audit verify` still passes, by design: a redacted event's stored
hash was computed over its original contents and is kept unchanged, as a
commitment to them; it is not recomputed (it cannot be), but its link is: the
next event's prev_hash must still equal it, so nothing can be inserted, removed
or reordered around it. A redacted event is only accepted in a chain that
records its redaction in a later, fully recomputable `anonymised` event. And
since no hash changes, every hash in an export taken before anonymising still
matches afterwards. Mail sent about the case (`sent_mail`) loses its recipients
and subject (anonymise) or goes (purge).

Each case is handled in a transaction of its own and at most once: a retry, or
tomorrow's run, finds it done (its `anonymised` or `purged` event) and skips it.
The daily run is a Temporal schedule (`app.runtime.retention_schedule`) starting the
`retention` workflow, whose activity (`activities.retention`) calls `apply_retention`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from domain.policy import Policy
from domain.records import append_events, in_transaction_retrying
from models import Case, CaseEvent, SentMail
from workflows.common import CLOSED, SYSTEM_ACTOR, EventIn
from workflows.durations import add_months, parse_duration

REDACTED = "_redacted"
# The policy file's actions, and the events that record them.
ANONYMISE, PURGE = "anonymise", "purge"
ANONYMISED, PURGED = "anonymised", "purged"
REDACTED_ACTOR = "redacted"


def is_redacted(data: object) -> bool:
    """Whether an event's data is the redaction marker (and nothing else)."""
    return isinstance(data, dict) and set(data) == {REDACTED}


@dataclass(frozen=True)
class RetentionItem:
    """A closed case past its type's retention, and what is to be done to it."""

    case_id: str
    type: str
    outcome: str | None
    closed_at: datetime
    action: str
    keep: str


def cutoff(now: datetime, keep: str) -> datetime:
    """Cases closed at or before this are past `keep` (an ISO duration) at `now`."""
    duration = parse_duration(keep)
    return add_months(now, -duration.months) - duration.elapsed


def _done_kinds(action: str) -> tuple[str, ...]:
    # An anonymised case may still be purged later; a purged one has nothing left.
    return (ANONYMISED, PURGED) if action == ANONYMISE else (PURGED,)


def retention_due(session: Session, policy: Policy, now: datetime) -> list[RetentionItem]:
    """Every closed case past its type's retention and not yet dealt with, oldest first."""
    items: list[RetentionItem] = []
    for case_type, rule in sorted(policy.retention.items()):
        done = exists().where(
            CaseEvent.case_id == Case.id, CaseEvent.kind.in_(_done_kinds(rule.action))
        )
        rows = session.execute(
            select(Case.id, Case.type, Case.outcome, Case.closed_at)
            .where(
                Case.type == case_type,
                Case.status == CLOSED,
                Case.closed_at.is_not(None),
                Case.closed_at <= cutoff(now, rule.keep),
                ~done,
            )
            .order_by(Case.closed_at, Case.id)
        )
        items += [
            RetentionItem(r.id, r.type, r.outcome, r.closed_at, rule.action, rule.keep)
            for r in rows
        ]
    return items


def _blank_row(case: Case, now: datetime) -> None:
    case.details, case.parties = {}, {}
    case.requester, case.assignee, case.owner = "", None, None
    case.search_text = f"{case.id} {case.type}".lower()
    # Later than any snapshot a delayed retry of `record` could still bring.
    case.updated_at = max(case.updated_at, now)
    case.version += 1


def _head(session: Session, case_id: str) -> tuple[int, str | None, int]:
    """(last seq, its hash, number of events) of a case's chain."""
    last = session.execute(
        select(CaseEvent.seq, CaseEvent.hash)
        .where(CaseEvent.case_id == case_id)
        .order_by(CaseEvent.seq.desc())
        .limit(1)
    ).first()
    count = session.scalar(
        select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case_id)
    )
    return (last.seq, last.hash, count or 0) if last else (0, None, 0)


def _record(item: RetentionItem, now: datetime, **data: object) -> EventIn:
    return EventIn(
        key=f"retention:{item.action}",
        kind=ANONYMISED if item.action == ANONYMISE else PURGED,
        actor=SYSTEM_ACTOR,
        at=now,
        stage="closed",
        data={"rule": f"retention.{item.type}", "keep": item.keep, **data},
    )


def anonymise(session: Session, item: RetentionItem, now: datetime) -> bool:
    """Blank the case and redact its events, keeping their hashes; False if already done."""
    case = session.get(Case, item.case_id, with_for_update=True)
    if case is None or case.status != CLOSED:
        return False
    done = select(CaseEvent.id).where(
        CaseEvent.case_id == item.case_id, CaseEvent.kind.in_((ANONYMISED, PURGED))
    )
    if session.execute(done.limit(1)).first() is not None:
        return False
    redacted = 0
    for event in session.scalars(select(CaseEvent).where(CaseEvent.case_id == item.case_id)):
        if not is_redacted(event.data):
            event.data = {REDACTED: ANONYMISED}
            redacted += 1
        if event.actor != SYSTEM_ACTOR:
            event.actor = REDACTED_ACTOR
    _blank_row(case, now)
    session.execute(
        update(SentMail)
        .where(SentMail.case_id == item.case_id)
        .values(recipients="", subject="", detail=""),
        execution_options={"synchronize_session": False},
    )
    session.flush()
    append_events(session, item.case_id, [_record(item, now, events_redacted=redacted)])
    return True


def purge(session: Session, item: RetentionItem, now: datetime) -> bool:
    """Blank the case and replace its chain by one `purged` event; False if already done."""
    case = session.get(Case, item.case_id, with_for_update=True)
    if case is None or case.status != CLOSED:
        return False
    kinds = select(CaseEvent.kind).where(CaseEvent.case_id == item.case_id)
    if PURGED in set(session.scalars(kinds)):
        return False
    seq, head, count = _head(session, item.case_id)
    session.execute(
        delete(CaseEvent).where(CaseEvent.case_id == item.case_id),
        execution_options={"synchronize_session": False},
    )
    session.execute(
        delete(SentMail).where(SentMail.case_id == item.case_id),
        execution_options={"synchronize_session": False},
    )
    _blank_row(case, now)
    session.flush()
    record = _record(item, now, events_removed=count, head_seq=seq, head_hash=head)
    append_events(session, item.case_id, [record])
    return True


@dataclass
class RetentionOutcome:
    anonymised: list[str]
    purged: list[str]


def apply_retention(
    sessions: sessionmaker[Session], policy: Policy, now: datetime
) -> RetentionOutcome:
    """Anonymise or purge every case past its retention, each in its own transaction."""
    outcome = RetentionOutcome([], [])
    with sessions() as session:
        items = retention_due(session, policy, now)
    for item in items:
        if in_transaction_retrying(sessions, _step(item, now)):
            done = outcome.anonymised if item.action == ANONYMISE else outcome.purged
            done.append(item.case_id)
    return outcome


def _step(item: RetentionItem, now: datetime) -> Callable[[Session], bool]:
    act = anonymise if item.action == ANONYMISE else purge
    return lambda session: act(session, item, now)
