"""What a caller sees of a case: the API's case JSON, cut to what they may see.

Confidential case types (API.md) are seen whole by their `full_viewers`; the
parties named by `partial_viewers` (the reporter, the subject) see only the
case's id, type, status, stage and outcome; anyone else does not see the case
at all. A party in conflict (`CaseTypeRules.parties_in_conflict`: an alleged
perpetrator, a referral's subject) never sees it whole, whatever their roles.
`app.service.queries`
states the same rule in SQL for lists.
"""

from __future__ import annotations

from typing import Any, Literal

from domain.times import iso
from models import Case, CaseEvent
from workflows.common import Actor, CaseSnapshot, Link
from workflows.rules import CaseTypeRules, allowed_actions, holds, may_see_whole

View = Literal["whole", "partial"]
PARTIAL_FIELDS = ("id", "type", "status", "stage", "outcome")


def partial_viewers(rules: CaseTypeRules) -> tuple[str, ...]:
    return rules.partial_viewers


def snapshot_of(row: Case) -> CaseSnapshot:
    return CaseSnapshot(
        id=row.id,
        type=row.type,
        status=row.status,
        stage=row.stage,
        requester=row.requester,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        outcome=row.outcome,
        assignee=row.assignee,
        team=row.team,
        owner=row.owner,
        due_at=row.due_at,
        overdue=row.overdue,
        escalation_level=row.escalation_level,
        closed_at=row.closed_at,
        details=dict(row.details or {}),
        links=[Link(**link) for link in row.links or []],
        parties=dict(row.parties or {}),
        policy_version=row.policy_version,
        confidential=row.confidential,
    )


# Who may export every case and its audit trail (app.service.exports): those who read everything.
EXPORT_ROLES = ("auditor", "admin")


def may_export(actor: Actor) -> bool:
    return any(role in actor.roles for role in EXPORT_ROLES)


def view_of(rules: CaseTypeRules, case: CaseSnapshot, actor: Actor) -> View | None:
    """How much of `case` the actor may see: all of it, the outline, or nothing."""
    if may_see_whole(actor, case, rules):
        return "whole"
    if any(holds(who, actor, case, rules) for who in partial_viewers(rules)):
        return "partial"
    return None


def case_json(rules: CaseTypeRules, case: CaseSnapshot, actor: Actor, view: View) -> dict[str, Any]:
    """The API's case object for this actor, with the actions they may take now."""
    whole: dict[str, Any] = {
        "id": case.id,
        "type": case.type,
        "status": case.status,
        "stage": case.stage,
        "outcome": case.outcome,
        "requester": case.requester,
        "assignee": case.assignee,
        "team": case.team,
        "due_at": iso(case.due_at),
        "overdue": case.overdue,
        "escalation_level": case.escalation_level,
        "opened_at": iso(case.opened_at),
        "updated_at": iso(case.updated_at),
        "closed_at": iso(case.closed_at),
        "details": case.details,
        "links": [{"id": link.id, "relation": link.relation} for link in case.links],
    }
    shown = whole if view == "whole" else {k: whole[k] for k in PARTIAL_FIELDS}
    if view == "partial" and case.status == "open" and case.owner == actor.email:
        # The case waits on them (a subject's appeal window): by when is theirs to know.
        shown["due_at"] = whole["due_at"]
    # A partial viewer may still have an action (a subject's appeal).
    shown["actions"] = allowed_actions(rules, case, actor)
    return shown


def event_json(event: CaseEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": iso(event.at),
        "actor": event.actor,
        "kind": event.kind,
        "stage": event.stage,
        "data": event.data,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
    }
