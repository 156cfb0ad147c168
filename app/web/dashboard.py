"""The dashboard page: `app.service.dashboard`'s figures as SVG charts, each with its table."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from app.service import dashboard as figures
from app.web.render import render
from app.web.session import services_of, signed_in
from app.web.svg import bar_chart, line_chart
from domain import text
from workflows.common import Actor

router = APIRouter()

Me = Annotated[Actor, Depends(signed_in)]


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(
    request: Request,
    me: Me,
    team: Annotated[str | None, Query(description="sac, sirt, hr, or all")] = None,
    weeks: Annotated[int, Query(ge=1, le=figures.MAX_WEEKS)] = 12,
) -> HTMLResponse:
    # No `team=` is the viewer's own team; `team=all` (or empty) is every case they may see.
    chosen = figures.default_team(me) if team is None else (None if team in ("", "all") else team)
    board = await figures.dashboard(services_of(request), actor=me, team=chosen, weeks=weeks)
    open_bars = [
        (f"{text.words(c.type)}: {text.words(c.stage)}", float(c.count))
        for c in board.open_by_stage
    ]
    level_bars = [(_level(level), float(n)) for level, n in board.overdue_by_level]
    points = [(f"{w.week_of.day} {w.week_of:%b}", w.percent) for w in board.compliance]
    charts = {
        "open": bar_chart("open-by-stage", "Open cases by type and stage", open_bars),
        "overdue": bar_chart("overdue-by-level", "Overdue cases by escalation level", level_bars),
        "compliance": line_chart(
            "sla-compliance", "Stages finished on time, per week (per cent)", points
        ),
        "ageing": bar_chart(
            "ageing", "Open cases by age", [(label, float(n)) for label, n in board.ageing]
        ),
    }
    return render(
        request,
        "dashboard.html",
        active="dashboard",
        board=board,
        charts=charts,
        teams=figures.TEAMS,
        team_choice=chosen or "all",
        weeks=weeks,
        level_name=_level,
    )


def _level(level: int) -> str:
    """What an escalation level means to a reader."""
    if level == 0:
        return "Overdue, no one escalated to yet"
    return f"Escalated {level} level{'s' if level > 1 else ''} up"
