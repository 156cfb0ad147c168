"""Case lists: `list_cases`, and one page of a list and its total, in the plans that keep it
fast at 100,000 cases.

`app.service.queries.where` says which cases; `page` says how to fetch them:

- the total first, from the list indexes (or the search index) alone; on SQLite a
  search's total and page in one query;
- the page as ids first, then those rows: sorting or skipping reads only the ids and
  order keys, never the wide rows (details, search text) of cases not on the page;
- when few cases match, sorted rather than found by walking the newest-first index:
  walking it would read every case to find the few (SQLite does, given a LIMIT; an
  employee's "mine" is 1 case in 100,000).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from app.service import queries
from app.service.cases import rules_for, with_owner
from app.service.errors import Invalid
from app.service.queries import CaseFilter
from app.service.services import Services
from domain.views import case_json, snapshot_of, view_of
from models import Case
from workflows.common import CLOSED, OPEN, Actor
from workflows.registry import CASE_TYPES
from workflows.rules import CaseTypeRules

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
MAX_OFFSET = 2**31 - 1
SORTS = ("newest", "due")

# At or below this many matches a page is sorted from them, not walked to in order.
FEW = 1000


class unindexed(ColumnElement[Any]):
    """`column` as an expression no index serves (SQLite `+column`), so that the planner
    finds the rows by the filters' indexes and sorts them; the same value either way."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


@compiles(unindexed)
def _unindexed_other(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL's planner weighs a LIMIT against the filters' selectivity itself.
    return compiler.process(element.column, **kw)


async def list_cases(
    svc: Services,
    *,
    actor: Actor,
    type: str | None = None,
    status: str | None = None,
    stage: str | None = None,
    team: str | None = None,
    assignee: str | None = None,
    overdue: bool | None = None,
    q: str | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    requester: str | None = None,
    sort: str = "newest",
    owner: bool = False,
    queue: str | None = None,
    escalated_to: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """(cases, total) newest first, only those the actor may see (see app.service.queries).

    `requester` ("me" or an email) keeps the cases someone raised; `sort="due"` lists
    them soonest due first (no due time, or one the actor may not see, last). `owner`
    adds whom each open stage waits on (see `with_owner`), for the pages. `queue` (a
    team) keeps the cases at that team's own stages; `escalated_to` ("me" or an email)
    the open cases whose escalation reached that person.
    """
    types = [rules_for(type)] if type else list(CASE_TYPES.values())
    if status not in (None, OPEN, CLOSED):
        raise Invalid(f"status: must be {OPEN} or {CLOSED}")
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit: must be between 1 and {MAX_LIMIT}")
    if not 0 <= offset <= MAX_OFFSET:  # past what a database integer holds is a 422, not a 500
        raise Invalid(f"offset: must be between 0 and {MAX_OFFSET}")
    if sort not in SORTS:
        raise Invalid(f"sort: must be one of {', '.join(SORTS)}")
    f = CaseFilter(
        status=status,
        stage=stage,
        team=team,
        assignee=actor.email if assignee == "me" else (assignee or "").strip().lower() or None,
        overdue=overdue,
        q=q,
        requester=actor.email if requester == "me" else (requester or "").strip().lower() or None,
        queue=queue or None,
        escalated_to=_me_or(actor, escalated_to),
    )

    def work(session: Session) -> tuple[list[Case], int]:
        return page(session, types, actor, f, sort=sort, limit=limit, offset=offset)

    rows, total = await svc.run(work)
    items = []
    for row in rows:
        rules, case = CASE_TYPES[row.type], snapshot_of(row)
        view = view_of(rules, case, actor)
        if view is not None:  # the SQL above already agrees; never show more than Python would
            item = case_json(rules, case, actor, view)
            items.append(with_owner(item, case, view) if owner else item)
    return items, total


def _me_or(actor: Actor, who: str | None) -> str | None:
    return actor.email if who == "me" else (who or "").strip().lower() or None


def page(
    session: Session,
    types: list[CaseTypeRules],
    actor: Actor,
    f: CaseFilter,
    *,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[list[Case], int]:
    """(cases on the page, total), newest first or (`sort="due"`) soonest due first; ties
    by id, so that a page never shows a case twice or skips one."""
    condition = queries.where(types, actor, f)
    if f.q and f.q.strip() and session.get_bind().dialect.name == "sqlite":
        # A search reads each case the FTS5 table gives (the exact check): once, for
        # the total and the page together, not once for each. Not on PostgreSQL: it
        # underestimates a LIKE's matches and walks the newest-first index through
        # every case for the window, where a count and a page of 50 each stay short.
        ranked = (
            select(Case.id, func.count().over())
            .where(condition)
            .order_by(*_order(types, actor, sort, few=False))
            .limit(limit)
            .offset(offset)
        )
        found = session.execute(ranked).all()
        if found:
            return _rows(session, [i for i, _ in found], types, actor, sort), found[0][1]
        # Nothing matched, or the page is past the end: only a count says which.
    total = session.scalar(select(func.count()).select_from(Case).where(condition)) or 0
    if offset >= total:
        return [], total
    order = _order(types, actor, sort, few=total <= FEW)
    ids = select(Case.id).where(condition).order_by(*order).limit(limit).offset(offset)
    return list(session.scalars(select(Case).where(Case.id.in_(ids)).order_by(*order))), total


def _order(
    types: list[CaseTypeRules], actor: Actor, sort: str, *, few: bool
) -> list[ColumnElement[Any]]:
    opened_at: ColumnElement[Any] = Case.__table__.c.opened_at
    case_id: ColumnElement[Any] = Case.__table__.c.id
    if few:
        opened_at, case_id = unindexed(opened_at), unindexed(case_id)
    if sort == "due":
        # A queue: soonest due first, and among cases due at once the oldest (first come,
        # first served); cases with no due time (or none this viewer may know) last.
        due = queries.due_order(types, actor)
        return [due.is_(None), due.asc(), opened_at.asc(), case_id.asc()]
    return [opened_at.desc(), case_id.desc()]


def _rows(
    session: Session, ids: list[str], types: list[CaseTypeRules], actor: Actor, sort: str
) -> list[Case]:
    chosen = select(Case).where(Case.id.in_(ids))
    return list(session.scalars(chosen.order_by(*_order(types, actor, sort, few=True))))
