"""A person leaves: `casework people deactivate EMAIL`, or SCIM's `active: false`.

They stay in the directory (the audit trail names them) but can no longer sign in or use
a token (the next request is refused: `app.service.auth` reads `active`), are never
mailed (`activities.notifications`) nor escalated to (`activities.directory`). Their
open work moves on, each move recorded in the case's audit trail and mailed:

- a case assigned to them goes, by the `reassign` action (the one path that says who
  may be assigned), to their manager if eligible, else their team's lead;
- a stage waiting on them as a party (a manager's endorsement) goes to the next active
  manager above them, and an escalation resting on them to whoever the directory now
  has at its level: the workflow's `person_left` update (`workflows.leavers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from activities.directory import manager_of, team_lead
from app.service import auth, cases
from app.service.errors import NotFound, ServiceError
from app.service.services import Services
from models import Case, CaseEvent, Person
from models.cases import party_email
from workflows.common import OPEN, SYSTEM_ACTOR, Actor, PersonLeft, PersonLeftResult
from workflows.registry import CASE_TYPES, PERSON_LEFT_UPDATE
from workflows.rules import CaseTypeRules

# Who moves a leaver's work: the system, with the administrator's right to reassign.
MOVER = Actor(SYSTEM_ACTOR, roles=["admin"], name="Casework")


@dataclass
class Deactivated:
    email: str
    was_active: bool
    tokens_revoked: int
    # case id -> what moved there ("reassigned to X", "party:requester_manager", ...)
    moved: dict[str, list[str]] = field(default_factory=dict)
    # case id -> why some of its work could not move (no one eligible)
    stuck: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Open:
    id: str
    type: str
    stage: str
    assignee: str | None
    parties: dict[str, str]


def mark_left(session: Session, email: str) -> tuple[bool, int]:
    """Deactivate `email` and revoke their tokens; (was active, tokens revoked). The
    caller commits. NotFound for a person the directory does not have."""
    person = session.get(Person, email)
    if person is None:
        raise NotFound(f"email: no such person {email}")
    was_active = person.active
    if was_active:
        person.active, person.deactivated_at = False, datetime.now(UTC)
    return was_active, auth.revoke_all(session, email)


async def deactivate(svc: Services, *, email: str, reason: str = "deactivated") -> Deactivated:
    """Deactivate `email` (idempotent: a second run moves whatever is still theirs)."""
    email = email.strip().lower()
    was_active, revoked = await svc.run(lambda s: mark_left(s, email))
    result = Deactivated(email, was_active, revoked)
    await reroute(svc, email=email, reason=reason, result=result)
    return result


async def reroute(
    svc: Services, *, email: str, reason: str, result: Deactivated | None = None
) -> Deactivated:
    """Move the open work of `email`, who has left (see the module's docstring)."""
    result = result or Deactivated(email, False, 0)
    for case in await svc.run(lambda s: _open_work(s, email)):
        rules = CASE_TYPES.get(case.type)
        if rules is None:
            continue
        moved: list[str] = []
        if case.assignee == email:
            moved += await _reassign(svc, rules, case, email, result)
        to = await svc.run(lambda s: _active_manager_above(s, email))
        left = PersonLeft(email=email, to=to, actor=SYSTEM_ACTOR, reason=reason)
        handle = svc.client.get_workflow_handle(case.id)
        try:
            answer = await handle.execute_update(
                PERSON_LEFT_UPDATE, left, result_type=PersonLeftResult
            )
        except Exception as e:  # a case that closed meanwhile has nothing left to move
            result.stuck[case.id] = f"not told: {e}"
            continue
        moved += answer.moved
        if moved:
            result.moved[case.id] = moved
    return result


async def _reassign(
    svc: Services, rules: CaseTypeRules, case: _Open, email: str, result: Deactivated
) -> list[str]:
    to = await svc.run(lambda s: _replacement(s, rules, case, email))
    if to is None:
        result.stuck[case.id] = f"no one eligible to take it over from {email}"
        return []
    try:
        await cases.act(
            svc, actor=MOVER, case_id=case.id, action="reassign", fields={"assignee": to}
        )
    except ServiceError as e:
        result.stuck[case.id] = e.message
        return []
    return [f"reassigned to {to}"]


def _open_work(session: Session, email: str) -> list[_Open]:
    """Open cases that wait on `email`: assigned, owned, a party that owns a stage, or
    the latest escalation sent to them."""
    named = or_(
        Case.assignee == email,
        Case.owner == email,
        party_email(Case.parties, "requester_manager") == email,
    )
    rows = list(session.scalars(select(Case).where(Case.status == OPEN, named)))
    escalated = session.execute(
        select(CaseEvent.case_id, CaseEvent.data)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(Case.status == OPEN, Case.overdue.is_(True), CaseEvent.kind == "escalated")
    )
    seen = {r.id for r in rows}
    more = {cid for cid, data in escalated if isinstance(data, dict) and data.get("to") == email}
    if more - seen:
        rows += session.scalars(select(Case).where(Case.id.in_(more - seen)))
    return [
        _Open(r.id, r.type, r.stage, r.assignee, dict(r.parties or {}))
        for r in sorted(rows, key=lambda r: r.id)
    ]


def _active_manager_above(session: Session, email: str) -> str | None:
    """The nearest manager above `email` who has not left."""
    seen = {email}
    current = manager_of(session, email)
    while current is not None and current not in seen:
        person = session.get(Person, current)
        if person is not None and person.active:
            return current
        seen.add(current)
        current = manager_of(session, current)
    return None


def _replacement(session: Session, rules: CaseTypeRules, case: _Open, email: str) -> str | None:
    """Who takes over a case assigned to `email`: their manager, else their team's lead,
    the first who has not left, holds the role the stage needs and is not a party in
    conflict (an investigation's perpetrator, a referral's subject)."""
    role = rules.role_for(case.stage)  # as `reassign` will check it (assignment_refusal)
    in_conflict = {case.parties.get(p) for p in rules.parties_in_conflict}
    candidates: Sequence[str | None] = (
        _active_manager_above(session, email),
        team_lead(session, rules.team),
    )
    for candidate in candidates:
        if candidate is None or candidate == email or candidate in in_conflict:
            continue
        person = session.get(Person, candidate)
        if person is not None and person.active and role in person.role_list:
            return candidate
    return None
