"""Cases: open one, read one and its audit trail, take an action; refusals recorded.

Each function takes keyword-only arguments, owns its transaction and raises
`app.service.errors.ServiceError`s; none knows of HTTP. Workflows own each case's
state and rules: opening and actions go to Temporal, while reads come from the
read model the workflows keep. Who is asking is `app.service.identity`'s part (and
`app.service.signin`'s, for a token); lists are `app.service.listing`'s, evidence
files `app.service.evidence`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.directory import manager_of, people_with_role
from app.service.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    for_refusal,
    from_refusal,
    invalid_fields,
    is_refusal,
    temporal_errors,
)
from app.service.services import Services
from app.service.signin import CaseRead
from domain.case_ids import next_case_id
from domain.records import append_events_retrying
from domain.views import View, case_json, event_json, snapshot_of, view_of
from models import Case, CaseEvent, Person
from workflows import investigation_types, ipa_types, referral_types
from workflows.common import OPEN, ActionRequest, Actor, CaseInput, CaseSnapshot, EventIn
from workflows.registry import ACT_UPDATE, CASE_TYPES, OPENED_UPDATE
from workflows.rules import (
    ActionRule,
    CaseTypeRules,
    Refusal,
    assignment_refusal,
    check_action,
    clean_fields,
    field_problems,
    holds,
    parties_from_details,
)

CLOSED_MESSAGE = "case is closed"
MAX_ACTION = 40

# Per case type: the policy's reason to refuse a request before anything starts.
Intake = Callable[[dict[str, Any], Services], Refusal | None]
INTAKE: dict[str, Intake] = {
    ipa_types.TYPE: lambda details, svc: ipa_types.intake_refusal(
        details, svc.settings.org_email_domains
    ),
    investigation_types.TYPE: lambda details, svc: investigation_types.intake_refusal(
        details, svc.policy.calendar.local_date(datetime.now(UTC))
    ),
}

# Per case type opened only by some: why this person may not open it (403), if not.
# Checked before the details, so those who may not open it learn nothing from them.
Opener = Callable[[Actor, dict[str, Any]], Refusal | None]
OPENERS: dict[str, Opener] = {
    referral_types.TYPE: referral_types.opener_refusal,
}


def rules_for(case_type: str | None) -> CaseTypeRules:
    rules = CASE_TYPES.get(case_type or "")
    if rules is None:
        raise Invalid(f"type: unknown case type {case_type!r} (one of {', '.join(CASE_TYPES)})")
    return rules


async def open_case(
    svc: Services, *, actor: Actor, case_type: str, details: dict[str, Any]
) -> dict[str, Any]:
    """Start a case and return it once its opening is recorded. Refused intake starts nothing."""
    rules = rules_for(case_type)
    if not isinstance(details, dict):
        raise Invalid("details: expected an object")
    opener = OPENERS.get(rules.type)
    if opener is not None and (not_yours := opener(actor, details)) is not None:
        raise from_refusal(not_yours)
    if problems := field_problems(rules.details, details):
        raise invalid_fields(problems, "details.")  # every field's problem at once
    try:
        cleaned = clean_fields(rules.details, details)
        intake = INTAKE.get(rules.type)
        refusal = intake(cleaned, svc) if intake else None
    except Refusal as r:
        refusal = r
    if refusal is not None:
        raise from_refusal(_in_details(refusal))
    now = datetime.now(UTC)

    def allocate(session: Session) -> tuple[str, str | None]:
        return next_case_id(session, rules.prefix, now.year), manager_of(session, actor.email)

    # Committed before the workflow starts: the counter's lock is not held across Temporal.
    case_id, manager = await svc.run(allocate)
    parties = {**parties_from_details(rules, cleaned), "requester": actor.email}
    if manager:
        parties["requester_manager"] = manager
    snapshot = CaseSnapshot(
        id=case_id,
        type=rules.type,
        status=OPEN,
        stage=rules.stages[0],
        requester=actor.email,
        opened_at=now,
        updated_at=now,
        team=rules.team,
        details=cleaned,
        parties=parties,
        policy_version=svc.policy.version,
        confidential=rules.confidential,
    )
    with temporal_errors():
        try:
            handle = await svc.client.start_workflow(
                rules.workflow,
                CaseInput(case=snapshot, policy=svc.policy.for_case(rules.type)),
                id=case_id,
                task_queue=svc.settings.task_queue,
            )
        except WorkflowAlreadyStartedError as e:
            raise Conflict(f"id: case {case_id} already exists") from e
        opened = await handle.execute_update(OPENED_UPDATE, result_type=CaseSnapshot)
    return case_json(rules, opened, actor, view_of(rules, opened, actor) or "partial")


def _in_details(refusal: Refusal) -> Refusal:
    """Name a details field as the request names it: `details.account_kind`."""
    if refusal.field and not refusal.message.startswith("details."):
        return Refusal(
            refusal.code, f"details.{refusal.message}", f"details.{refusal.field}", refusal.plain
        )
    return refusal


async def load_case(
    svc: Services, case_id: str, read: CaseRead | None = None
) -> tuple[CaseTypeRules, CaseSnapshot]:
    if read is not None and read.case_id == case_id:
        row = read.row
    else:
        row = await svc.run(lambda s: s.get(Case, case_id))
    rules = CASE_TYPES.get(row.type) if row is not None else None
    if row is None or rules is None:
        raise NotFound(f"case: no such case {case_id}")
    return rules, snapshot_of(row)


async def visible_case(
    svc: Services, actor: Actor, case_id: str
) -> tuple[CaseTypeRules, CaseSnapshot, View]:
    """(rules, case, view) from the read model; NotFound also for a case hidden from the actor."""
    rules, case = await load_case(svc, case_id)
    view = view_of(rules, case, actor)
    if view is None:
        raise NotFound(f"case: no such case {case_id}")
    return rules, case, view


async def get_case(
    svc: Services, *, actor: Actor, case_id: str, owner: bool = False
) -> dict[str, Any]:
    """The case as the actor may see it; `owner` adds whom it waits on (`with_owner`)."""
    rules, case, view = await visible_case(svc, actor, case_id)
    shown = case_json(rules, case, actor, view)
    if not owner:
        return shown
    shown = with_owner(shown, case, view)
    if view == "whole" and case.links:
        shown["links"] = await _links_openable(svc, actor, case)
    return shown


async def _links_openable(svc: Services, actor: Actor, case: CaseSnapshot) -> list[dict[str, Any]]:
    """The case's links, each with `may_open`: whether `actor` may open the linked case
    (a page links it only then, and otherwise names it)."""
    ids = [link.id for link in case.links]
    rows = await svc.run(lambda s: list(s.scalars(select(Case).where(Case.id.in_(ids)))))
    found = {row.id: row for row in rows}
    links = []
    for link in case.links:
        row = found.get(link.id)
        rules = CASE_TYPES.get(row.type) if row is not None else None
        may_open = (
            row is not None
            and rules is not None
            and view_of(rules, snapshot_of(row), actor) is not None
        )
        links.append({"id": link.id, "relation": link.relation, "may_open": may_open})
    return links


def with_owner(shown: dict[str, Any], case: CaseSnapshot, view: View) -> dict[str, Any]:
    """`shown` plus `owner`, whom the open stage waits on (an email; None for a queue),
    and `queue`, the queue it waits on then (a team, or its leads: `sac_lead`), where the
    case is seen whole: the pages show them, the API's contract has neither."""
    if view != "whole":
        return shown
    rules = CASE_TYPES.get(case.type)
    queue = case.team
    if rules is not None and case.status == OPEN and case.stage in rules.stages:
        queue = rules.stage(case.stage).queue or case.team
    return {**shown, "owner": case.owner, "queue": queue}


async def case_events(svc: Services, *, actor: Actor, case_id: str) -> list[dict[str, Any]]:
    """The audit trail, oldest first: only for those who may see the whole case."""
    _, _, view = await visible_case(svc, actor, case_id)
    if view != "whole":
        raise Forbidden(f"actor: {actor.email} may not read the events of {case_id}")
    query = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
    events = await svc.run(lambda s: list(s.scalars(query)))
    return [event_json(e) for e in events]


async def act(
    svc: Services,
    *,
    actor: Actor,
    case_id: str,
    action: str,
    fields: dict[str, Any],
    read: CaseRead | None = None,
) -> dict[str, Any]:
    """Take one action; the case after it. A refusal is recorded in the audit trail too.
    `read`: the case as `authenticate_reading` found it, not read again."""
    if not isinstance(action, str) or not action:
        raise Invalid("action: required")
    if len(action) > MAX_ACTION:  # no action is named so; not worth an audit record
        raise Invalid(f"action: unknown action (longer than {MAX_ACTION} characters)")
    if not isinstance(fields, dict):
        raise Invalid("fields: expected an object")
    rules, case = await load_case(svc, case_id, read)
    await refuse_unless_open_to(svc, actor, rules, case, action)
    await refuse_bad_fields(svc, actor, rules, case, action, fields)
    assignee = await _assignee_checked(svc, actor, rules, case, action, fields)
    handle = svc.client.get_workflow_handle(case_id)
    request = ActionRequest(
        action=action, actor=for_case(actor, case), fields=dict(fields), assignee=assignee
    )
    with temporal_errors():
        try:
            after = await handle.execute_update(ACT_UPDATE, request, result_type=CaseSnapshot)
        except WorkflowUpdateFailedError as e:
            cause = e.cause
            # Anything but the validator's refusal is a fault, not an answer.
            if not isinstance(cause, ApplicationError) or not is_refusal(cause.type):
                raise
            refusal = for_refusal(cause.type or "", cause.message)
            raise await record_refusal(svc, actor, case, action, refusal) from None
        except RPCError as e:
            # NOT_FOUND: the workflow has completed since the read model last heard of it.
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
            raise await record_refusal(svc, actor, case, action, Conflict(CLOSED_MESSAGE)) from e
    return case_json(rules, after, actor, view_of(rules, after, actor) or "partial")


def for_case(actor: Actor, case: CaseSnapshot) -> Actor:
    """`actor` as a workflow needs them for `case`: whom they manage narrowed to its
    requester (the whole list could be thousands of people, on every action)."""
    manages = [case.requester] if case.requester in actor.manages else []
    return Actor(actor.email, roles=list(actor.roles), name=actor.name, manages=manages)


def _person_actor(session: Session, email: str) -> Actor | None:
    person = session.get(Person, email)
    return None if person is None else Actor(person.email, person.role_list, person.name)


async def _assignee_checked(
    svc: Services,
    actor: Actor,
    rules: CaseTypeRules,
    case: CaseSnapshot,
    action: str,
    fields: dict[str, Any],
) -> Actor | None:
    """For an action that assigns the case (`ActionRule.assigns`): the person it names, as
    the directory has them, once `assignment_refusal` accepts them; a refusal is recorded
    and raised (422). Anything else wrong with the action is the workflow's to refuse."""
    try:
        rule = check_action(rules, case, actor, action)
        cleaned = clean_fields(rule.fields, fields)
    except Refusal:
        return None
    if rule.assigns is None or not cleaned.get(rule.assigns.field):
        return None
    email = cleaned[rule.assigns.field]
    assignee = await svc.run(lambda s: _person_actor(s, email))
    refusal = assignment_refusal(rules, case, rule, cleaned, assignee)
    if refusal is not None:
        raise await record_refusal(svc, actor, case, action, from_refusal(refusal))
    return assignee


async def eligible_assignees(
    svc: Services, *, actor: Actor, case_id: str, action: str
) -> list[dict[str, str]]:
    """Whom `actor` may give `case_id` to by `action` (`reassign`, `assign`, `accept`):
    the people the directory says hold the stage's role, less any `assignment_refusal`
    refuses (a party to a confidential case). Empty for an action that assigns no one
    or that `actor` may not take now. The pages offer these in a picker."""
    rules, case, _ = await visible_case(svc, actor, case_id)
    try:
        rule: ActionRule = check_action(rules, case, actor, action)
    except Refusal:
        return []
    if rule.assigns is None:
        return []
    role = rules.role_for(rule.assigns.stage or case.stage)
    field = rule.assigns.field

    def work(session: Session) -> list[Actor]:
        return [Actor(p.email, p.role_list, p.name) for p in people_with_role(session, role)]

    people = await svc.run(work)
    return [
        {"email": p.email, "name": p.name}
        for p in people
        if assignment_refusal(rules, case, rule, {field: p.email}, p) is None
    ]


async def refuse_unless_open_to(
    svc: Services, actor: Actor, rules: CaseTypeRules, case: CaseSnapshot, action: str
) -> None:
    """Before any action: 404 to whoever may not see the case, 409 once it is closed;
    each refusal recorded in the audit trail."""
    if view_of(rules, case, actor) is None:
        # Recorded as what it is, answered as if the case did not exist.
        hidden = Forbidden(f"actor: {actor.email} may not see {case.id}")
        await record_refusal(svc, actor, case, action, hidden)
        raise NotFound(f"case: no such case {case.id}")
    if case.status != OPEN:
        raise await record_refusal(svc, actor, case, action, Conflict(CLOSED_MESSAGE))


async def refuse_bad_fields(
    svc: Services,
    actor: Actor,
    rules: CaseTypeRules,
    case: CaseSnapshot,
    action: str,
    fields: dict[str, Any],
) -> None:
    """Every bad field at once (422, recorded), where the read model says the action is
    the actor's to take; otherwise the workflow's validator decides, and says why."""
    try:
        rule = check_action(rules, case, actor, action)
    except Refusal:
        return
    if problems := field_problems(rule.fields, fields):
        raise await record_refusal(svc, actor, case, action, invalid_fields(problems))


async def record_refusal(
    svc: Services, actor: Actor, case: CaseSnapshot, action: str, error: ServiceError
) -> ServiceError:
    """Write a refused attempt to the case's audit trail; the error to raise.

    A refused update leaves nothing in Temporal's history, so this is its only record.
    """
    event = EventIn(
        key=f"refused:{uuid4().hex}",
        kind="refused",
        actor=actor.email,
        at=datetime.now(UTC),
        stage=case.stage,
        data={"action": action, "code": error.code, "reason": error.message},
    )
    await asyncio.to_thread(append_events_retrying, svc.sessions, case.id, [event])
    return error


async def preview_action(
    svc: Services, *, actor: Actor, case_id: str, action: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """What `act` would refuse, said before the action is sent (a confirmation page asks
    first): 404 to whoever may not see the case, 409 once closed, 409/403 from the read
    model by `check_action`, every bad field at once (422); each refusal recorded, as
    `act` records its own. The case as the actor sees it, where the action may go ahead."""
    rules, case = await load_case(svc, case_id)
    await refuse_unless_open_to(svc, actor, rules, case, action)
    if (refused := _refusal(rules, case, actor, action, fields)) is not None:
        raise await record_refusal(svc, actor, case, action, refused)
    return case_json(rules, case, actor, view_of(rules, case, actor) or "partial")


async def refusal_words(
    svc: Services, *, actor: Actor, case_id: str, action: str, fields: dict[str, Any]
) -> ServiceError | None:
    """Why the read model refuses this action, in `check_action`'s words for a person
    (the workflow's validator sends only its message); None where it would not. Reads
    only: nothing is recorded."""
    rules, case, _ = await visible_case(svc, actor, case_id)
    if case.status != OPEN:
        return Conflict(CLOSED_MESSAGE)
    return _refusal(rules, case, actor, action, fields)


def _refusal(
    rules: CaseTypeRules, case: CaseSnapshot, actor: Actor, action: str, fields: dict[str, Any]
) -> ServiceError | None:
    try:
        rule = check_action(rules, case, actor, action)
    except Refusal as r:
        return from_refusal(r)
    if problems := field_problems(rule.fields, fields):
        return invalid_fields(problems)
    return None


# Common to every case type, and not worth a line on every page: whoever may comment
# does; reassigning is the leads' and administrators' housekeeping.
_NOT_EXPLAINED = {"comment", "reassign"}


async def unavailable_actions(
    svc: Services, *, actor: Actor, case_id: str
) -> list[tuple[str, str, str]]:
    """The actions of the case's current stage that `actor` may not take, where they
    would want to know why: (action, label, reason), the reason in `check_action`'s own
    words. Said to members of the case's team (a SAC officer learns that only a SAC
    lead decides), and to anyone a four-eyes rule keeps from an action (the SAC lead
    who assessed an exception), never to the parties of a confidential case."""
    rules, case, view = await visible_case(svc, actor, case_id)
    if view != "whole" or case.status != OPEN:
        return []
    in_team = rules.team in actor.roles or f"{rules.team}_lead" in actor.roles
    out = []
    for name in rules.by_name:
        if name in _NOT_EXPLAINED:
            continue
        rule = rules.action(name, case.stage)
        if case.stage not in rule.stages:
            continue
        # A party's own action (the requester withdraws) is nobody else's question.
        parties_only = all(w.startswith("party:") for w in rule.who)
        try:
            check_action(rules, case, actor, name)
        except Refusal as r:
            four_eyes = r.message.endswith("(four eyes)") and any(
                holds(w, actor, case, rules) for w in rule.who
            )
            if four_eyes or (in_team and not parties_only):
                out.append((name, rule.label or name.replace("_", " ").capitalize(), r.plain))
    return out
