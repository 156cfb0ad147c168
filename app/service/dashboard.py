"""The dashboard's figures, from the read model: open cases by type and stage, what is
overdue now, SLA compliance week by week, and how old the open cases are.

Team leads, auditors and administrators may see it (`may_see_dashboard`). Every
figure counts only cases the viewer may see whole, by `app.service.queries.visible_sql`,
the rule the case lists use: a team lead counts their team's confidential cases,
an auditor every case, and no one counts a case they could only see in outline
(an outline shows neither its age nor whether it is overdue).

SLA compliance is read from the audit trail, which records no due times: a stage
is late when it was escalated (or found overdue with no one left to escalate to)
before someone moved the case on, since escalation starts exactly at the due time.
Only stages a person finished count: a window that closes or an exception that
expires ends on time by design, and `awaiting_info` runs on the requester's clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.orm import Session

from app.service.errors import Forbidden, Invalid
from app.service.queries import visible_sql
from app.service.services import Services
from models import Case, CaseEvent
from workflows.common import OPEN, Actor
from workflows.registry import CASE_TYPES

DASHBOARD_ROLES = ("sac_lead", "sirt_lead", "hr_lead", "auditor", "admin")
TEAMS = tuple(dict.fromkeys(rules.team for rules in CASE_TYPES.values()))
LATE_KINDS = ("escalated", "escalation_chain_ended")
NOT_MEASURED = frozenset({"awaiting_info"})  # the requester's clock, not the team's
MAX_WEEKS, OVERDUE_LISTED = 52, 50
# Ageing of open cases: (label, at least this many days old), youngest first.
AGE_BUCKETS = (
    ("Under 1 week", 0),
    ("1 to 2 weeks", 7),
    ("2 to 4 weeks", 14),
    ("1 to 3 months", 28),
    ("Over 3 months", 91),
)


@dataclass(frozen=True)
class StageCount:
    type: str
    stage: str
    count: int


@dataclass(frozen=True)
class OverdueCase:
    id: str
    type: str
    stage: str
    due_at: datetime | None
    escalation_level: int


@dataclass(frozen=True)
class WeekCompliance:
    week_of: date  # the Monday
    finished: int  # stages a person finished that week
    on_time: int  # of those, finished before they were escalated

    @property
    def percent(self) -> float | None:
        return 100 * self.on_time / self.finished if self.finished else None


@dataclass(frozen=True)
class Dashboard:
    team: str | None
    as_of: datetime
    open_by_stage: list[StageCount]
    overdue_by_level: list[tuple[int, int]]  # (escalation level, cases), level 0 first
    overdue: list[OverdueCase]  # the longest overdue first, at most OVERDUE_LISTED
    compliance: list[WeekCompliance]  # oldest week first
    ageing: list[tuple[str, int]]  # AGE_BUCKETS' labels, youngest first

    @property
    def open_total(self) -> int:
        return sum(c.count for c in self.open_by_stage)

    @property
    def overdue_total(self) -> int:
        return sum(n for _, n in self.overdue_by_level)


def may_see_dashboard(actor: Actor) -> bool:
    return any(role in actor.roles for role in DASHBOARD_ROLES)


def default_team(actor: Actor) -> str | None:
    """A lead of exactly one team starts on that team's figures; anyone else on all."""
    led = [team for team in TEAMS if f"{team}_lead" in actor.roles]
    return led[0] if len(led) == 1 and not {"auditor", "admin"} & set(actor.roles) else None


def seen_whole(actor: Actor, team: str | None = None) -> ColumnElement[bool]:
    """Cases `actor` may see whole (of `team`, if given), as the lists decide it."""
    # A filter on a field only the whole case shows: `visible_sql` then leaves outlines out.
    only_whole = [Case.team == team if team else true()]
    return or_(*(visible_sql(rules, actor, hidden=only_whole) for rules in CASE_TYPES.values()))


async def dashboard(
    svc: Services,
    *,
    actor: Actor,
    team: str | None = None,
    weeks: int = 12,
    now: datetime | None = None,
) -> Dashboard:
    """The dashboard as `actor` may see it; Forbidden for anyone who may not."""
    if not may_see_dashboard(actor):
        raise Forbidden(
            f"actor: the dashboard is for team leads, auditors and administrators "
            f"({actor.email} is none of these)"
        )
    if team is not None and team not in TEAMS:
        raise Invalid(f"team: unknown team {team!r} (one of {', '.join(TEAMS)})")
    if not 1 <= weeks <= MAX_WEEKS:
        raise Invalid(f"weeks: must be between 1 and {MAX_WEEKS}")
    at = now or datetime.now(UTC)
    return await svc.run(lambda s: figures(s, actor=actor, team=team, weeks=weeks, now=at))


def figures(
    session: Session, *, actor: Actor, team: str | None, weeks: int, now: datetime
) -> Dashboard:
    """Every figure of the dashboard, in one transaction (no permission check: see above)."""
    visible = seen_whole(actor, team)
    return Dashboard(
        team=team,
        as_of=now,
        open_by_stage=open_by_stage(session, visible),
        overdue_by_level=overdue_by_level(session, visible),
        overdue=overdue_cases(session, visible),
        compliance=compliance(session, visible, weeks=weeks, now=now),
        ageing=ageing(session, visible, now=now),
    )


def open_by_stage(session: Session, visible: ColumnElement[bool]) -> list[StageCount]:
    rows = session.execute(
        select(Case.type, Case.stage, func.count())
        .where(visible, Case.status == OPEN)
        .group_by(Case.type, Case.stage)
    )
    counts = [StageCount(t, s, n) for t, s, n in rows]
    return sorted(counts, key=lambda c: _stage_order(c.type, c.stage))


def _stage_order(case_type: str, stage: str) -> tuple[int, int]:
    types = list(CASE_TYPES)
    rules = CASE_TYPES.get(case_type)
    stages = list(rules.stages) if rules else []
    return (
        types.index(case_type) if case_type in types else len(types),
        stages.index(stage) if stage in stages else len(stages),
    )


def overdue_by_level(session: Session, visible: ColumnElement[bool]) -> list[tuple[int, int]]:
    rows = session.execute(
        select(Case.escalation_level, func.count())
        .where(visible, Case.status == OPEN, Case.overdue.is_(True))
        .group_by(Case.escalation_level)
        .order_by(Case.escalation_level)
    )
    return [(int(level), int(n)) for level, n in rows]


def overdue_cases(session: Session, visible: ColumnElement[bool]) -> list[OverdueCase]:
    rows = session.scalars(
        select(Case)
        .where(visible, Case.status == OPEN, Case.overdue.is_(True))
        .order_by(Case.due_at, Case.id)
        .limit(OVERDUE_LISTED)
    )
    return [OverdueCase(c.id, c.type, c.stage, c.due_at, c.escalation_level) for c in rows]


def ageing(
    session: Session, visible: ColumnElement[bool], *, now: datetime
) -> list[tuple[str, int]]:
    opened = session.scalars(select(Case.opened_at).where(visible, Case.status == OPEN))
    counts = dict.fromkeys((label for label, _ in AGE_BUCKETS), 0)
    for opened_at in opened:
        age_days = (now - opened_at).total_seconds() / 86400
        label = next(
            label for label, least in reversed(AGE_BUCKETS) if age_days >= least or not least
        )
        counts[label] += 1
    return list(counts.items())


def week_of(moment: datetime) -> date:
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def compliance(
    session: Session, visible: ColumnElement[bool], *, weeks: int, now: datetime
) -> list[WeekCompliance]:
    """Per week (the last `weeks`, this one included): stages finished, and on time."""
    first = week_of(now) - timedelta(weeks=weeks - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    actions = sorted({a.name for rules in CASE_TYPES.values() for a in rules.actions})
    # Cases someone acted on in the window; all their actions and escalations, in order,
    # as an escalation long before the window can make a stage finished in it late.
    acted = (
        select(CaseEvent.case_id)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(visible, CaseEvent.at >= since, CaseEvent.kind.in_(actions))
        .distinct()
    )
    events = session.execute(
        select(CaseEvent.case_id, CaseEvent.kind, CaseEvent.stage, CaseEvent.at, CaseEvent.data)
        .where(CaseEvent.case_id.in_(acted), CaseEvent.kind.in_([*actions, *LATE_KINDS]))
        .order_by(CaseEvent.case_id, CaseEvent.seq)
    )
    finished: dict[date, int] = defaultdict(int)
    on_time: dict[date, int] = defaultdict(int)
    for week, late in _finished_stages(events, since=since):
        finished[week] += 1
        on_time[week] += 0 if late else 1
    return [
        WeekCompliance(day, finished[day], on_time[day])
        for day in (first + timedelta(weeks=i) for i in range(weeks))
    ]


def _finished_stages(
    events: Iterable[tuple[str, str, str | None, datetime, dict[str, object] | None]],
    *,
    since: datetime,
) -> Iterable[tuple[date, bool]]:
    """(week, late) of each stage a person finished since `since`, from events in order.

    An action's event carries the stage it was taken in and, when it moved the case,
    `to`: the next stage. An escalation carries the stage that was late.
    """
    case_id, stage, late = None, None, False
    for cid, kind, at_stage, at, data in events:
        if cid != case_id or at_stage != stage:  # another case, or a move not by a person
            case_id, stage, late = cid, at_stage, False
        if kind in LATE_KINDS:
            late = True
            continue
        moved_to = (data or {}).get("to")
        if moved_to is None:
            continue
        if at >= since and stage not in NOT_MEASURED:
            yield week_of(at), late
        stage, late = str(moved_to), False
