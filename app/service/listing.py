"""One page of a case list and its total, in the plans that keep it fast at 100,000 cases.

`app.queries.where` says which cases; this says how to fetch them:

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

from app import queries
from app.queries import CaseFilter
from models import Case
from workflows.common import Actor
from workflows.rules import CaseTypeRules

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
