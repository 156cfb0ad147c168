"""My work (`/`): what waits on me, my teams' queues, what I raised; soonest due first.

Each tab is one `service.list_cases` filter, so the page shows exactly what the
API would list for the same person: confidential cases seen in outline appear
only where an outline may (what I raised), never in a queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app import service
from app.web.render import render
from app.web.session import services_of, signed_in
from domain import text
from domain.sla import sla_badge
from workflows.common import CLOSED, OPEN, Actor
from workflows.registry import CASE_TYPES

router = APIRouter()
Me = Annotated[Actor, Depends(signed_in)]
PAGE_SIZE = 25
STATUSES = {"open": OPEN, "closed": CLOSED, "any": None}


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    filters: dict[str, Any]


def my_teams(me: Actor) -> list[str]:
    """The teams whose queues are mine: by a role of the team's name or its lead's."""
    teams = dict.fromkeys(rules.team for rules in CASE_TYPES.values())
    return [t for t in teams if t in me.roles or f"{t}_lead" in me.roles]


def tabs_for(me: Actor) -> list[Tab]:
    tabs = [Tab("waiting", "Waiting on me", {"assignee": "me"})]
    if me.manages:  # a manager: what was escalated to them
        tabs.append(Tab("escalated", "Escalated to me", {"escalated_to": "me"}))
    tabs += [Tab(f"team-{t}", f"{text.label(t)} queue", {"queue": t}) for t in my_teams(me)]
    tabs.append(Tab("raised", "Raised by me", {"requester": "me"}))
    tabs.append(Tab("all", "Everything I may see", {}))
    return tabs


def stage_choices(case_type: str | None) -> list[str]:
    """Stages to filter by, in each type's own order (its table in workflows/)."""
    types = [CASE_TYPES[case_type]] if case_type in CASE_TYPES else CASE_TYPES.values()
    return list(dict.fromkeys(stage for rules in types for stage in rules.stages))


@router.get("/")
async def my_work(
    request: Request,
    me: Me,
    view: str = "",
    case_type: Annotated[str, Query(alias="type")] = "",
    stage: str = "",
    status: str = "open",
    q: str = "",
    overdue: str = "",
    page: int = 1,
) -> Response:
    svc = services_of(request)
    tabs = tabs_for(me)
    page = max(page, 1)
    common: dict[str, Any] = {
        "type": case_type or None,
        "stage": stage or None,
        "status": STATUSES.get(status, OPEN),
        "q": q.strip() or None,
        "overdue": True if overdue else None,
    }
    counts = {}
    for t in tabs:
        _, counts[t.key] = await service.list_cases(svc, actor=me, **common, **t.filters, limit=1)
    # No tab asked for: the first with something in it (a SAC officer's queue, an
    # employee's own requests), so the first page shown is never needlessly empty.
    chosen = view or next((t.key for t in tabs if counts[t.key]), tabs[0].key)
    tab = next((t for t in tabs if t.key == chosen), tabs[0])
    items, total = await service.list_cases(
        svc,
        actor=me,
        **common,
        **tab.filters,
        sort="due",
        owner=True,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    query = {"type": case_type, "stage": stage, "status": status, "q": q, "overdue": overdue}
    kept = {k: v for k, v in query.items() if v}

    def link(**change: Any) -> str:
        return "/?" + urlencode({**kept, "view": tab.key, **change})

    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    people = [c.get(k) for c in items for k in ("requester", "owner", "assignee")]
    names = await service.names_of(svc, [e for e in people if e])
    return render(
        request,
        "work.html",
        active="work",
        tabs=tabs,
        tab=tab,
        counts=counts,
        items=[(case, sla_badge(case)) for case in items],
        names=names,
        total=total,
        page=page,
        pages=pages,
        prev_link=link(page=page - 1) if page > 1 else None,
        next_link=link(page=page + 1) if page < pages else None,
        tab_links={t.key: "/?" + urlencode({**kept, "view": t.key}) for t in tabs},
        filters=query,
        types=list(CASE_TYPES),
        stages=stage_choices(case_type or None),
        statuses=list(STATUSES),
    )
