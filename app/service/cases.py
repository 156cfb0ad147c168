"""The service layer: what a person may do with cases, for the API, the CLI and the pages.

Each function takes keyword-only arguments, owns its transaction and raises
`app.errors.ServiceError`s; none knows of HTTP. Workflows own each case's
state and rules: opening and actions go to Temporal, while reads come from the
read model the workflows keep. Who is asking is `app.identity`'s part.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.directory import manager_of
from activities.records import append_events_retrying
from app import identity, listing
from app.bootstrap import Services
from app.case_ids import next_case_id
from app.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    Unauthorized,
    for_refusal,
    from_refusal,
    is_refusal,
)
from app.evidence import (
    Damaged,
    EvidenceDownload,
    EvidenceStore,
    checked_sha256,
    download_name,
    safe_media_type,
)
from app.identity import actor_for, whoami
from app.queries import CaseFilter
from app.temporal import temporal_errors
from app.throttle import keys_for
from app.views import View, case_json, event_json, snapshot_of, view_of
from models import Case, CaseEvent
from workflows import investigation_types, ipa_types, referral_types
from workflows.common import CLOSED, OPEN, ActionRequest, Actor, CaseInput, CaseSnapshot, EventIn
from workflows.registry import ACT_UPDATE, CASE_TYPES, OPENED_UPDATE
from workflows.rules import (
    CaseTypeRules,
    Refusal,
    check_action,
    clean_fields,
    parties_from_details,
)

__all__ = [
    "CaseRead",
    "act",
    "actor_for",
    "authenticate",
    "authenticate_reading",
    "case_events",
    "evidence_download",
    "get_case",
    "list_cases",
    "open_case",
    "upload_evidence",
    "whoami",
]

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
MAX_OFFSET = 2**31 - 1
SORTS = ("newest", "due")
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


async def authenticate(svc: Services, *, token: str, client: str | None = None) -> Actor:
    """The person an API token belongs to (Unauthorized if none), unless this address
    or this token's prefix has failed too often of late (TooManyAttempts, 429)."""
    actor, _ = await authenticate_reading(svc, token=token, client=client, case_id=None)
    return actor


@dataclass(frozen=True)
class CaseRead:
    """A case's row (None: no such case), read in the caller's sign-in transaction."""

    case_id: str
    row: Case | None


async def authenticate_reading(
    svc: Services, *, token: str, client: str | None, case_id: str | None
) -> tuple[Actor, CaseRead | None]:
    """`authenticate`, and the case `case_id` read in the same trip to the database (an
    action needs both: `act(read=...)`)."""
    keys = keys_for(client=client, token=token)
    svc.throttle.check(keys)

    def read(session: Session) -> CaseRead | None:
        return None if case_id is None else CaseRead(case_id, session.get(Case, case_id))

    try:
        return await identity.authenticate_reading(svc, token=token, also=read)
    except Unauthorized:
        svc.throttle.failed(keys)
        raise


def _rules(case_type: str | None) -> CaseTypeRules:
    rules = CASE_TYPES.get(case_type or "")
    if rules is None:
        raise Invalid(f"type: unknown case type {case_type!r} (one of {', '.join(CASE_TYPES)})")
    return rules


async def open_case(
    svc: Services, *, actor: Actor, case_type: str, details: dict[str, Any]
) -> dict[str, Any]:
    """Start a case and return it once its opening is recorded. Refused intake starts nothing."""
    rules = _rules(case_type)
    if not isinstance(details, dict):
        raise Invalid("details: expected an object")
    opener = OPENERS.get(rules.type)
    if opener is not None and (not_yours := opener(actor, details)) is not None:
        raise from_refusal(not_yours)
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
        return Refusal(refusal.code, f"details.{refusal.message}", f"details.{refusal.field}")
    return refusal


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
) -> tuple[list[dict[str, Any]], int]:
    """(cases, total) newest first, only those the actor may see (see app.queries).

    `requester` ("me" or an email) keeps the cases someone raised; `sort="due"` lists
    them soonest due first (no due time, or one the actor may not see, last). `owner`
    adds whom each open stage waits on (see `with_owner`), for the pages.
    """
    types = [_rules(type)] if type else list(CASE_TYPES.values())
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
    )

    def work(session: Session) -> tuple[list[Case], int]:
        return listing.page(session, types, actor, f, sort=sort, limit=limit, offset=offset)

    rows, total = await svc.run(work)
    items = []
    for row in rows:
        rules, case = CASE_TYPES[row.type], snapshot_of(row)
        view = view_of(rules, case, actor)
        if view is not None:  # the SQL above already agrees; never show more than Python would
            item = case_json(rules, case, actor, view)
            items.append(with_owner(item, case, view) if owner else item)
    return items, total


async def _load(
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


async def _visible_case(
    svc: Services, actor: Actor, case_id: str
) -> tuple[CaseTypeRules, CaseSnapshot, View]:
    """(rules, case, view) from the read model; NotFound also for a case hidden from the actor."""
    rules, case = await _load(svc, case_id)
    view = view_of(rules, case, actor)
    if view is None:
        raise NotFound(f"case: no such case {case_id}")
    return rules, case, view


async def get_case(
    svc: Services, *, actor: Actor, case_id: str, owner: bool = False
) -> dict[str, Any]:
    """The case as the actor may see it; `owner` adds whom it waits on (`with_owner`)."""
    rules, case, view = await _visible_case(svc, actor, case_id)
    shown = case_json(rules, case, actor, view)
    return with_owner(shown, case, view) if owner else shown


def with_owner(shown: dict[str, Any], case: CaseSnapshot, view: View) -> dict[str, Any]:
    """`shown` plus `owner`, whom the open stage waits on (an email; None for the team's
    queue), where the case is seen whole: the pages show it, the API's contract has none."""
    return {**shown, "owner": case.owner} if view == "whole" else shown


async def case_events(svc: Services, *, actor: Actor, case_id: str) -> list[dict[str, Any]]:
    """The audit trail, oldest first: only for those who may see the whole case."""
    _, _, view = await _visible_case(svc, actor, case_id)
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
    rules, case = await _load(svc, case_id, read)
    await _refuse_unless_open_to(svc, actor, rules, case, action)
    handle = svc.client.get_workflow_handle(case_id)
    request = ActionRequest(action=action, actor=actor, fields=dict(fields))
    with temporal_errors():
        try:
            after = await handle.execute_update(ACT_UPDATE, request, result_type=CaseSnapshot)
        except WorkflowUpdateFailedError as e:
            cause = e.cause
            # Anything but the validator's refusal is a fault, not an answer.
            if not isinstance(cause, ApplicationError) or not is_refusal(cause.type):
                raise
            refusal = for_refusal(cause.type or "", cause.message)
            raise await _refused(svc, actor, case, action, refusal) from None
        except RPCError as e:
            # NOT_FOUND: the workflow has completed since the read model last heard of it.
            if e.status != RPCStatusCode.NOT_FOUND:
                raise
            raise await _refused(svc, actor, case, action, Conflict(CLOSED_MESSAGE)) from e
    return case_json(rules, after, actor, view_of(rules, after, actor) or "partial")


async def _refuse_unless_open_to(
    svc: Services, actor: Actor, rules: CaseTypeRules, case: CaseSnapshot, action: str
) -> None:
    """Before any action: 404 to whoever may not see the case, 409 once it is closed;
    each refusal recorded in the audit trail."""
    if view_of(rules, case, actor) is None:
        # Recorded as what it is, answered as if the case did not exist.
        hidden = Forbidden(f"actor: {actor.email} may not see {case.id}")
        await _refused(svc, actor, case, action, hidden)
        raise NotFound(f"case: no such case {case.id}")
    if case.status != OPEN:
        raise await _refused(svc, actor, case, action, Conflict(CLOSED_MESSAGE))


async def upload_evidence(
    svc: Services,
    *,
    actor: Actor,
    case_id: str,
    content: AsyncIterable[bytes],
    description: str | None,
    url: str | None = None,
    sha256: str | None = None,
    media_type: str | None = None,
) -> dict[str, Any]:
    """Store an evidence file by its content, then take `add_evidence` with its hash.

    Whoever may not add evidence to the case is refused before a byte is read, as for
    an action (404 if they may not see the case, 409 once closed, 403), and so is a bad
    description or URL. Then the file is stored (422 if it is not the `sha256` given,
    413 past the limit). Should the workflow still refuse the action, the stored file
    stays, unreferenced: stored by content, it overwrites nothing.
    """
    action = "add_evidence"
    rules, case = await _load(svc, case_id)
    await _refuse_unless_open_to(svc, actor, rules, case, action)
    fields: dict[str, Any] = {"description": description, "url": url, "media_type": media_type}
    try:
        clean_fields(check_action(rules, case, actor, action).fields, fields)
        store = EvidenceStore(svc.settings.data_dir, limit=svc.settings.evidence_max_bytes)
        stored = await store.store(content, sha256=sha256)
    except Refusal as r:
        raise await _refused(svc, actor, case, action, from_refusal(r)) from None
    except ServiceError as e:
        raise await _refused(svc, actor, case, action, e) from None
    fields.update(sha256=stored.sha256, size=stored.size)
    after = await act(svc, actor=actor, case_id=case_id, action=action, fields=fields)
    return {
        "evidence": {"sha256": stored.sha256, "size": stored.size, "new": stored.new},
        "case": after,
    }


async def evidence_download(
    svc: Services, *, actor: Actor, case_id: str, sha256: str
) -> EvidenceDownload:
    """An evidence file of the case, verified against its hash and open to stream.

    Only for those who see the whole case (404 for anyone else, outline viewers too),
    and only a file the case's audit trail records (404 for any other hash: one case's
    evidence is not fetched through another). A stored file whose bytes no longer match
    its hash is refused (409 `evidence_damaged`) and the refusal recorded.
    """
    _, case, view = await _visible_case(svc, actor, case_id)
    if view != "whole":
        raise NotFound(f"case: no such case {case_id}")
    wanted = checked_sha256(sha256)
    query = (
        select(CaseEvent.data)
        .where(CaseEvent.case_id == case_id, CaseEvent.kind == "add_evidence")
        .order_by(CaseEvent.seq)
    )
    events = await svc.run(lambda s: list(s.scalars(query)))
    recorded = [data for data in events if data.get("sha256") == wanted]
    if not recorded:
        raise NotFound(f"sha256: {case_id} records no evidence with SHA-256 {wanted}")
    store = EvidenceStore(svc.settings.data_dir)
    try:
        opened, size = await asyncio.to_thread(store.open_verified, wanted)
    except FileNotFoundError:
        if not any("size" in d for d in recorded):  # recorded by hash, never uploaded
            raise NotFound(f"sha256: only the hash {wanted} was recorded, no file") from None
        gone = Damaged(f"sha256: the file uploaded as {wanted} is no longer stored")
        raise await _refused(svc, actor, case, "download_evidence", gone) from None
    except Damaged as damaged:
        raise await _refused(svc, actor, case, "download_evidence", damaged) from None
    media_type = safe_media_type(recorded[-1].get("media_type"))
    return EvidenceDownload(
        sha256=wanted,
        size=size,
        media_type=media_type,
        filename=download_name(case_id, wanted, media_type),
        file=opened,
    )


async def _refused(
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
