"""Case lists in SQL: the filters of `GET /api/cases`, and who may see what.

`domain.views.view_of` decides for one case in Python; this says the same as a
WHERE clause (parties in conflict included: `CaseTypeRules.parties_in_conflict`), so a
list's `total` never counts, and no filter matches, a case the caller may not
see. `tests/app/service/test_cases.py` checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import CTE, ColumnElement, Select, and_, case, false, func, null, or_, select, true

from domain.views import partial_viewers
from models import Case, CaseEscalation, Person
from models.cases import party_email
from models.search import text_search
from workflows.common import Actor
from workflows.rules import CaseTypeRules


@dataclass(frozen=True)
class CaseFilter:
    """The filters of a case list, checked; None means "any"."""

    status: str | None = None
    stage: str | None = None
    team: str | None = None
    assignee: str | None = None  # an email, "me" already resolved
    overdue: bool | None = None
    q: str | None = None
    requester: str | None = None  # an email, "me" already resolved
    # A team's queue: cases of that team at its own stages (`CaseTypeRules.team_stages`),
    # not those waiting on a party (a manager's endorsement) or on its leads alone.
    queue: str | None = None
    escalated_to: str | None = None  # an email: cases whose escalation reached them


def where(types: list[CaseTypeRules], actor: Actor, f: CaseFilter) -> ColumnElement[bool]:
    """Cases of `types` that match `f` and that `actor` may see."""
    # Fields an outline shows (API.md): filtering on them reveals nothing more.
    shown: list[ColumnElement[bool]] = []
    if f.status:
        shown.append(Case.status == f.status)
    if f.stage:
        shown.append(Case.stage == f.stage)
    hidden: list[ColumnElement[bool]] = []
    # What an outline may match instead of `hidden` (None: an outline never matches): a
    # case in outline waits on me (a subject's appeal) is mine to know.
    outline: list[ColumnElement[bool]] | None = []
    if f.team:
        hidden.append(Case.team == f.team)
    if f.queue:
        hidden.append(queue_sql(types, f.queue))
    if f.assignee:
        # "Mine" is what waits on me (a manager's endorsement) or is assigned to me, but
        # for a decision that waits on the leads alone, whoever triaged it; and for me, a
        # decision waiting on a role of mine alone (a SAC lead's).
        mine = [
            Case.owner == f.assignee,
            and_(Case.assignee == f.assignee, ~lead_stage_sql(types)),
        ]
        if f.assignee == actor.email:
            mine.append(leads_sql(types, actor))
        hidden.append(or_(*mine))
    if f.escalated_to:
        escalated = select(CaseEscalation.case_id).where(CaseEscalation.email == f.escalated_to)
        hidden.append(Case.id.in_(escalated))
    if f.overdue is not None:
        hidden.append(Case.overdue.is_(f.overdue))
    if f.requester:
        # Who raised a case is not in its outline, except to the one who raised it.
        (shown if f.requester == actor.email else hidden).append(Case.requester == f.requester)
    if len(hidden) == 1 and f.assignee == actor.email and not f.requester:
        outline = [Case.owner == actor.email]
    elif hidden:
        outline = None
    search = search_sql(f.q) if f.q and f.q.strip() else None
    visible = [
        visible_sql(rules, actor, hidden=hidden, search=search, outline=outline) for rules in types
    ]
    # What any match (whole or outline) must have, from the search index: the database
    # reads only those cases, not all of them, to check the exact rule above.
    indexed = [text_search((f.q or "").lower().split())] if search else []
    return and_(or_(false(), *visible), *shown, *indexed)


def _holds_sql(who: str, actor: Actor, rules: CaseTypeRules) -> ColumnElement[bool]:
    """`rules.holds` as a condition on the cases table."""
    kind, _, name = who.partition(":")
    if kind == "role":
        return true() if name in actor.roles else false()
    if kind == "lead":
        return true() if f"{rules.team}_lead" in actor.roles else false()
    if kind == "party":
        if name == "requester":
            return Case.requester == actor.email
        return _names_sql(name, actor)
    if kind == "chain" and name == "requester":
        # Requesters the actor manages, directly or not: the directory's chains, walked
        # in the database (`managed_sql`), as `Actor.manages` holds them for one case.
        return Case.requester.in_(managed_sql(actor.email, f"managed_{rules.prefix.lower()}"))
    raise ValueError(f"party {who!r} cannot decide who sees a case")


def _not_conflicted_sql(actor: Actor, rules: CaseTypeRules) -> ColumnElement[bool]:
    """`rules.party_in_conflict(...) is None` in SQL: the actor is none of the case's conflicted
    parties. NOT IN, not `party != email`: a party the case does not name is NULL, and
    NULL != x is not true, so a case with no perpetrator named would be hidden from
    everyone."""
    return and_(true(), *(~_names_sql(p, actor) for p in rules.parties_in_conflict))


def exportable_sql(actor: Actor, types: list[CaseTypeRules]) -> ColumnElement[bool]:
    """Cases an exporter (`domain.views.may_export`) may take: all of them, less any case
    of which they are a conflicted party, whatever their roles."""
    return or_(false(), *(and_(Case.type == r.type, _not_conflicted_sql(actor, r)) for r in types))


def _names_sql(party: str, actor: Actor) -> ColumnElement[bool]:
    """The case names the actor as `party`. A subquery on that party's index
    (`models.cases.party_email`), so that a list reads only the list indexes, never
    each case's row, to decide who sees it: 100,000 cases in milliseconds."""
    named = _NAMED.c
    return Case.id.in_(select(named.id).where(party_email(named.parties, party) == actor.email))


# The cases table again, for `_names_sql`'s subqueries: a Core alias made once (an ORM
# `aliased()` per call cost milliseconds per list), and not `cases`, which the
# subquery would correlate to the outer query.
_NAMED = Case.__table__.alias("named")


def _any(whos: tuple[str, ...], actor: Actor, rules: CaseTypeRules) -> ColumnElement[bool]:
    return or_(false(), *(_holds_sql(w, actor, rules) for w in whos))


@lru_cache(maxsize=256)
def _managed_cte(email: str, name: str) -> CTE:
    people = Person.__table__
    reports = (
        select(people.c.email).where(people.c.manager_email == email).cte(name, recursive=True)
    )
    return reports.union(
        select(people.c.email).join(reports, people.c.manager_email == reports.c.email)
    )


def managed_sql(email: str, name: str = "managed") -> Select[tuple[str]]:
    """Everyone `email` manages, directly or through others: a recursive CTE over
    `people.manager_email`. One CTE object per (email, name), so a query that asks twice
    (a list's filter and its order) names it once."""
    cte = _managed_cte(email, name)
    return select(cte.c.email)


def queue_sql(types: list[CaseTypeRules], team: str) -> ColumnElement[bool]:
    """Cases in `team`'s queue: of that team, at one of its own stages."""
    return or_(
        false(),
        *(
            and_(Case.type == r.type, Case.team == team, Case.stage.in_(r.team_stages()))
            for r in types
            if r.team_stages()
        ),
    )


def lead_stage_sql(types: list[CaseTypeRules]) -> ColumnElement[bool]:
    """The case is at a stage that waits on a role's holders alone (`lead_stages`)."""
    return or_(
        false(),
        *(
            and_(Case.type == r.type, Case.stage.in_(list(r.lead_stages())))
            for r in types
            if r.lead_stages()
        ),
    )


def leads_sql(types: list[CaseTypeRules], actor: Actor) -> ColumnElement[bool]:
    """Open decisions waiting on a role the actor holds alone (`lead_stages`: a SAC lead's
    decision, an HR lead's appeal), that nobody has been assigned."""
    waiting = [
        and_(Case.type == r.type, Case.stage.in_(stages))
        for r in types
        if (stages := [s for s, role in r.lead_stages().items() if role in actor.roles])
    ]
    return and_(Case.owner.is_(None), Case.status == "open", or_(false(), *waiting))


def search_sql(q: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """`q=` as (condition on a whole case, condition on an outline): every word must match."""
    words = q.lower().split()
    whole = and_(true(), *(Case.search_text.contains(w, autoescape=True) for w in words))
    outline = and_(true(), *(func.lower(Case.id).contains(w, autoescape=True) for w in words))
    return whole, outline


def visible_sql(
    rules: CaseTypeRules,
    actor: Actor,
    *,
    hidden: list[ColumnElement[bool]],
    search: tuple[ColumnElement[bool], ColumnElement[bool]] | None = None,
    outline: list[ColumnElement[bool]] | None = None,
) -> ColumnElement[bool]:
    """Cases of `rules.type` the actor may see that match the filters.

    `hidden` filters read fields an outline does not show (team, assignee,
    overdue): a case seen only in outline never matches them, or a count would
    give those fields away. `search` is `search_sql(q)`: an outline matches on
    its id only. `outline`: what an outline must match instead of `hidden` (None: with
    `hidden` given, an outline never matches).
    """
    of_type = Case.type == rules.type
    whole_filters = [*hidden, *(search[:1] if search else ())]
    if not rules.need_to_know and not rules.parties_in_conflict:
        return and_(of_type, *whole_filters)
    viewer = _any(rules.full_viewers, actor, rules) if rules.need_to_know else true()
    whole = and_(viewer, _not_conflicted_sql(actor, rules), *whole_filters)
    if hidden and outline is None:
        return and_(of_type, whole)
    seen = and_(
        _any(partial_viewers(rules), actor, rules),
        *(outline if hidden and outline else ()),
        *(search[1:] if search else ()),
    )
    return and_(of_type, or_(whole, seen))


def due_order(types: list[CaseTypeRules], actor: Actor) -> ColumnElement[datetime | None]:
    """The due time to sort a list by: NULL where the actor sees only an outline, whose
    due time is not theirs to know, not even by its place in the list."""
    # With a filter on hidden fields, `visible_sql` is "seen whole" (and of that type).
    whole = or_(false(), *(visible_sql(rules, actor, hidden=[true()]) for rules in types))
    return case((whole, Case.due_at), else_=null())
