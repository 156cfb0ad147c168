"""People, managers and teams: who a late stage escalates to, who a team's queue is."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from models import Person
from workflows.common import (
    EscalationTarget,
    EscalationTargetRequest,
    TeamMembers,
    TeamMembersRequest,
)
from workflows.registry import ESCALATION_TARGET_ACTIVITY, TEAM_MEMBERS_ACTIVITY


def manager_of(session: Session, email: str) -> str | None:
    """The line manager's email, or None (not in the directory, or at the top)."""
    return session.scalar(select(Person.manager_email).where(Person.email == email))


def people_with_role(session: Session, role: str) -> list[Person]:
    """Everyone holding `role`, by email."""
    return _people_with_role(session, role)


def _people_with_role(session: Session, role: str) -> list[Person]:
    # `roles` is a short `;`-separated list: LIKE narrows it down in the database, the
    # exact test on role_list decides (`sac` is also a substring of `sac_lead`).
    candidates = session.scalars(
        select(Person).where(Person.roles.contains(role, autoescape=True)).order_by(Person.email)
    )
    return [p for p in candidates if role in p.role_list]


def team_lead(session: Session, team: str) -> str | None:
    """The person holding `<team>_lead`; the first by email if several do."""
    leads = _people_with_role(session, f"{team}_lead")
    return leads[0].email if leads else None


def team_members(session: Session, team: str) -> list[str]:
    """Emails of the people holding role `team` itself, sorted."""
    return [p.email for p in _people_with_role(session, team)]


def _chain(session: Session, owner: str | None, team: str | None) -> Iterator[str]:
    """Level 1, 2, ... upwards; ends at the top, at a gap, or where the data loops."""
    seen: set[str] = set()
    if owner is not None:
        seen.add(owner.lower())
        current = manager_of(session, owner)
    elif team is not None:
        current = team_lead(session, team)
    else:
        return
    while current is not None and current.lower() not in seen:
        seen.add(current.lower())
        yield current
        current = manager_of(session, current)


def escalation_target(session: Session, req: EscalationTargetRequest) -> EscalationTarget:
    """The `req.level`-th person up the chain, passing over anyone in `req.exclude`."""
    excluded = {e.lower() for e in req.exclude}
    skipped: list[str] = []
    level = 0
    if req.level >= 1:
        for email in _chain(session, req.owner, req.team):
            if email.lower() in excluded:
                skipped.append(email)
                continue
            level += 1
            if level == req.level:
                person = session.get(Person, email)
                return EscalationTarget(
                    email=email, name=person.name if person else "", skipped=skipped
                )
    return EscalationTarget(email=None, skipped=skipped)


class DirectoryActivities:
    def __init__(self, db: Engine | sessionmaker[Session]) -> None:
        self._sessions = sessionmaker(db) if isinstance(db, Engine) else db

    @activity.defn(name=ESCALATION_TARGET_ACTIVITY)
    def escalation_target(self, req: EscalationTargetRequest) -> EscalationTarget:
        with self._sessions() as session:
            return escalation_target(session, req)

    @activity.defn(name=TEAM_MEMBERS_ACTIVITY)
    def team_members(self, req: TeamMembersRequest) -> TeamMembers:
        with self._sessions() as session:
            return TeamMembers(emails=team_members(session, req.team))
