"""Exports for auditors: cases and their events as CSV or JSON Lines, streamed.

Only auditors and administrators may export (`domain.views.may_export`): an export
holds every case, confidential ones included, less any case of which the exporter
is a conflicted party (an alleged perpetrator who happens to be an auditor). Rows
are read in batches by key (each batch its own short transaction), so neither the
database nor this process holds the whole log at once, and the event log is
append-only so no row is seen twice or skipped.

An event row carries exactly what its hash covers (`domain.records.event_hash`):
`case_id, seq, key, at, actor, kind, stage, data, prev_hash`, with `at` in the very
text form that was hashed, so a third party can recompute every chain from the
export alone (`app/service/verify_export.py`, standard library only, is the recipe). A case
row carries `last_seq` and `last_hash`, the head of its chain: with the cases export
at hand, events missing from the end of a chain show up too.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from app.service import queries
from app.service.errors import Forbidden, Invalid
from app.service.services import Services
from domain.times import iso_exact
from domain.views import may_export
from models import Case, CaseEvent
from workflows.common import Actor
from workflows.registry import CASE_TYPES

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
BATCH = 500

CASE_COLUMNS = (
    "id",
    "type",
    "status",
    "stage",
    "outcome",
    "requester",
    "assignee",
    "team",
    "owner",
    "due_at",
    "overdue",
    "escalation_level",
    "opened_at",
    "updated_at",
    "closed_at",
    "policy_version",
    "confidential",
    "details",
    "links",
    "parties",
    "last_seq",
    "last_hash",
)
# What `event_hash` covers, in its order, then the hash itself.
EVENT_COLUMNS = ("case_id", "seq", "key", "at", "actor", "kind", "stage", "data", "prev_hash")
EVENT_EXPORT_COLUMNS = (*EVENT_COLUMNS, "hash")


@dataclass(frozen=True)
class Export:
    """A checked export, ready to stream: nothing is read until `chunks` is iterated."""

    what: str  # "cases" or "events"
    format: str
    media_type: str
    filename: str
    chunks: AsyncIterator[str]


def parse_since(since: str | None) -> datetime | None:
    """An ISO date (midnight UTC) or date-time (naive means UTC); Invalid names `since`."""
    if since is None or not since.strip():
        return None
    text = since.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"since: {since!r} is not an ISO date or date-time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _check(actor: Actor, fmt: str, case_type: str | None) -> None:
    if not may_export(actor):
        raise Forbidden(f"actor: {actor.email} may not export (auditors and administrators only)")
    if fmt not in FORMATS:
        raise Invalid(f"format: must be one of {', '.join(FORMATS)}")
    if case_type and case_type not in CASE_TYPES:
        raise Invalid(f"type: unknown case type {case_type!r} (one of {', '.join(CASE_TYPES)})")


def _iso(moment: datetime | None) -> str | None:
    return iso_exact(moment) if moment is not None else None


def _case_row(case: Case, heads: dict[str, tuple[int, str]]) -> dict[str, Any]:
    last_seq, last_hash = heads.get(case.id, (0, None))
    return {
        "id": case.id,
        "type": case.type,
        "status": case.status,
        "stage": case.stage,
        "outcome": case.outcome,
        "requester": case.requester,
        "assignee": case.assignee,
        "team": case.team,
        "owner": case.owner,
        "due_at": _iso(case.due_at),
        "overdue": case.overdue,
        "escalation_level": case.escalation_level,
        "opened_at": _iso(case.opened_at),
        "updated_at": _iso(case.updated_at),
        "closed_at": _iso(case.closed_at),
        "policy_version": case.policy_version,
        "confidential": case.confidential,
        "details": case.details,
        "links": case.links,
        "parties": case.parties,
        "last_seq": last_seq,
        "last_hash": last_hash,
    }


def event_row(event: Any) -> dict[str, Any]:
    """An event as exported: the hashed fields, `at` as hashed, and the hash."""
    return {
        "case_id": event.case_id,
        "seq": event.seq,
        "key": event.key,
        "at": iso_exact(event.at),
        "actor": event.actor,
        "kind": event.kind,
        "stage": event.stage,
        "data": event.data,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _cases_batch(
    condition: ColumnElement[bool], after: str | None
) -> Callable[[Session], list[dict[str, Any]]]:
    def work(session: Session) -> list[dict[str, Any]]:
        query = select(Case).where(condition)
        if after is not None:
            query = query.where(Case.id > after)
        cases = list(session.scalars(query.order_by(Case.id).limit(BATCH)))
        ids = [c.id for c in cases]
        tops = (
            select(CaseEvent.case_id, func.max(CaseEvent.seq).label("seq"))
            .where(CaseEvent.case_id.in_(ids))
            .group_by(CaseEvent.case_id)
            .subquery()
        )
        last = select(CaseEvent.case_id, CaseEvent.seq, CaseEvent.hash).join(
            tops, and_(CaseEvent.case_id == tops.c.case_id, CaseEvent.seq == tops.c.seq)
        )
        heads = {row.case_id: (row.seq, row.hash) for row in session.execute(last)} if ids else {}
        return [_case_row(c, heads) for c in cases]

    return work


def _events_batch(
    query: Select[Any], after: tuple[str, int] | None
) -> Callable[[Session], list[dict[str, Any]]]:
    def work(session: Session) -> list[dict[str, Any]]:
        q = query
        if after is not None:
            case_id, seq = after
            q = q.where(
                or_(
                    CaseEvent.case_id > case_id,
                    and_(CaseEvent.case_id == case_id, CaseEvent.seq > seq),
                )
            )
        rows = session.execute(q.order_by(CaseEvent.case_id, CaseEvent.seq).limit(BATCH))
        return [event_row(row) for row in rows]

    return work


async def _case_rows(
    svc: Services,
    exportable: ColumnElement[bool],
    case_type: str | None,
    since: datetime | None,
    case_id: str | None,
) -> AsyncIterator[dict[str, Any]]:
    condition: ColumnElement[bool] = exportable
    if case_type:
        condition = and_(condition, Case.type == case_type)
    if since is not None:
        condition = and_(condition, Case.updated_at >= since)
    if case_id:
        condition = and_(condition, Case.id == case_id)
    after: str | None = None
    while True:
        batch = await svc.run(_cases_batch(condition, after))
        for row in batch:
            yield row
        if len(batch) < BATCH:
            return
        after = batch[-1]["id"]


async def _event_rows(
    svc: Services,
    exportable: ColumnElement[bool],
    case_type: str | None,
    since: datetime | None,
    case_id: str | None,
) -> AsyncIterator[dict[str, Any]]:
    query = select(*(getattr(CaseEvent, c) for c in EVENT_EXPORT_COLUMNS))
    query = query.join(Case, Case.id == CaseEvent.case_id).where(exportable)
    if case_type:
        query = query.where(Case.type == case_type)
    if since is not None:
        query = query.where(CaseEvent.at >= since)
    if case_id:
        query = query.where(CaseEvent.case_id == case_id)
    after: tuple[str, int] | None = None
    while True:
        batch = await svc.run(_events_batch(query, after))
        for row in batch:
            yield row
        if len(batch) < BATCH:
            return
        after = (batch[-1]["case_id"], batch[-1]["seq"])


def _json_cell(value: Any) -> Any:
    """A CSV cell: objects and lists as canonical JSON (what the hash covers), None empty."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


async def _encode(
    rows: AsyncIterator[dict[str, Any]], fmt: str, columns: Sequence[str]
) -> AsyncIterator[str]:
    if fmt == "jsonl":
        async for row in rows:
            yield json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    async for row in rows:
        writer.writerow([_json_cell(row[c]) for c in columns])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


async def export(
    svc: Services,
    *,
    actor: Actor,
    what: str,
    format: str = "jsonl",
    type: str | None = None,
    since: str | None = None,
    case_id: str | None = None,
) -> Export:
    """Check the request (403 unless auditor or admin, 422 for a bad filter) and return
    the export, whose rows are read only as it is streamed.

    `since` keeps cases updated, or events recorded, at or after it. An events export
    with `since` or `type` starts chains part-way: each row still proves its own
    contents and its link to the row before it.
    """
    _check(actor, format, type)
    moment = parse_since(since)
    exportable = queries.exportable_sql(actor, list(CASE_TYPES.values()))
    columns: tuple[str, ...]
    if what == "cases":
        rows, columns = _case_rows(svc, exportable, type, moment, case_id), CASE_COLUMNS
    elif what == "events":
        rows = _event_rows(svc, exportable, type, moment, case_id)
        columns = EVENT_EXPORT_COLUMNS
    else:
        raise Invalid("what: must be cases or events")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Export(
        what=what,
        format=format,
        media_type=FORMATS[format],
        filename=f"casework-{what}-{stamp}.{format}",
        chunks=_encode(rows, format, columns),
    )
