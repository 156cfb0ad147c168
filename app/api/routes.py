"""The HTTP API of shared/API.md: thin routes over `app.service` (`router`).

Every failure, FastAPI's own included (malformed JSON, unknown paths, wrong
methods, oversized bodies), answers `{"error": {"code", "message"}}` with the
contract's status, so a client has one shape to handle (`app.api.http_errors`).
`app.runtime.webapp` mounts this router beside the pages.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from app import service
from app.api.metrics import timing_action
from app.api.schemas import Action, CaseList, CaseOut, ErrorOut, EventList, Health, Me, OpenCase
from app.service import exports, health
from app.service.errors import Unauthorized
from app.service.services import Services
from workflows.common import Actor

_bearer = HTTPBearer(auto_error=False, description="an API token from `casework users token`")
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 409, 413, 422, 429)
}


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


Svc = Annotated[Services, Depends(get_services)]


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _signed_in(
    svc: Services,
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    case_id: str | None,
) -> tuple[Actor, service.CaseRead | None]:
    if credentials is None:
        raise Unauthorized("token: missing (send Authorization: Bearer <token>)")
    # The address repeated failures are counted against (app.service.throttle).
    client = request.client.host if request.client else None
    return await service.authenticate_reading(
        svc, token=credentials.credentials, client=client, case_id=case_id
    )


async def get_actor(svc: Svc, request: Request, credentials: Credentials) -> Actor:
    actor, _ = await _signed_in(svc, request, credentials, None)
    return actor


async def get_actor_and_case(
    svc: Svc, request: Request, credentials: Credentials, case_id: str
) -> tuple[Actor, service.CaseRead | None]:
    """The caller, and the case of the path read in the same transaction as the token."""
    return await _signed_in(svc, request, credentials, case_id)


Caller = Annotated[Actor, Depends(get_actor)]
CallerAndCase = Annotated[tuple[Actor, service.CaseRead | None], Depends(get_actor_and_case)]


def _json(content: dict[str, Any], status_code: int = 200) -> JSONResponse:
    """`content` as it is: the service builds JSON types only (`domain.views`), so FastAPI's
    jsonable_encoder, about 0.3 ms a case, would copy it for nothing."""
    return JSONResponse(content, status_code=status_code)


router = APIRouter(responses=_ERRORS)


@router.get("/healthz", response_model=None, responses={200: {"model": Health}, 503: {}})
async def healthz(svc: Svc) -> dict[str, str] | JSONResponse:
    checks = await health.check(svc)
    if all(checks.values()):
        return {"status": "ok"}
    down = ", ".join(name for name, ok in checks.items() if not ok)
    return JSONResponse(
        {"error": {"code": "unavailable", "message": f"not answering: {down}"}}, status_code=503
    )


@router.get("/api/me", response_model=None, responses={200: {"model": Me}})
async def me(svc: Svc, actor: Caller) -> dict[str, Any]:
    return await service.whoami(svc, actor=actor)


@router.post(
    "/api/cases", status_code=201, response_model=None, responses={201: {"model": CaseOut}}
)
async def open_case(svc: Svc, actor: Caller, body: OpenCase) -> JSONResponse:
    opened = await service.open_case(svc, actor=actor, case_type=body.type, details=body.details)
    return _json(opened, status_code=201)


@router.get("/api/cases", response_model=None, responses={200: {"model": CaseList}})
async def list_cases(
    svc: Svc,
    actor: Caller,
    case_type: Annotated[str | None, Query(alias="type")] = None,
    status: Annotated[str | None, Query(description="open or closed")] = None,
    stage: str | None = None,
    team: str | None = None,
    queue: Annotated[
        str | None,
        Query(description="a team: its queue, the cases at that team's own stages"),
    ] = None,
    assignee: Annotated[str | None, Query(description='"me" or an email')] = None,
    escalated_to: Annotated[
        str | None,
        Query(description='"me" or an email: open cases whose escalation reached them'),
    ] = None,
    overdue: bool | None = None,
    q: Annotated[str | None, Query(description="words to search for")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT)] = service.DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
    sort: Annotated[
        Literal["newest", "due"],
        Query(description="newest first, or soonest due first (ties: the oldest first)"),
    ] = "newest",
) -> dict[str, Any]:
    items, total = await service.list_cases(
        svc,
        actor=actor,
        type=case_type,
        status=status,
        stage=stage,
        team=team,
        queue=queue,
        assignee=assignee,
        escalated_to=escalated_to,
        overdue=overdue,
        q=q,
        limit=limit,
        offset=offset,
        sort=sort,
    )
    return {"items": items, "total": total}


@router.get("/api/cases/{case_id}", response_model=None, responses={200: {"model": CaseOut}})
async def get_case(svc: Svc, actor: Caller, case_id: str) -> JSONResponse:
    return _json(await service.get_case(svc, actor=actor, case_id=case_id))


@router.post(
    "/api/cases/{case_id}/actions", response_model=None, responses={200: {"model": CaseOut}}
)
async def act(svc: Svc, caller: CallerAndCase, case_id: str, body: Action) -> JSONResponse:
    actor, read = caller
    with timing_action(case_id, body.action):  # casework_action_seconds at /metrics
        after = await service.act(
            svc,
            actor=actor,
            case_id=case_id,
            action=body.action,
            fields=body.model_extra or {},
            read=read,
        )
    return _json(after)


@router.get(
    "/api/cases/{case_id}/events", response_model=None, responses={200: {"model": EventList}}
)
async def events(svc: Svc, actor: Caller, case_id: str) -> dict[str, Any]:
    return {"items": await service.case_events(svc, actor=actor, case_id=case_id)}


_EXPORT_SINCE = Query(description="ISO date or date-time: cases updated, events recorded since")


async def _export(
    svc: Services,
    actor: Actor,
    what: str,
    fmt: str,
    case_type: str | None,
    since: str | None,
    case_id: str | None,
) -> StreamingResponse:
    export = await exports.export(
        svc, actor=actor, what=what, format=fmt, type=case_type, since=since, case_id=case_id
    )
    return StreamingResponse(
        export.chunks,
        media_type=export.media_type,
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )


_EXPORTED: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}
}


@router.get("/api/exports/cases", response_model=None, responses=_EXPORTED)
async def export_cases(
    svc: Svc,
    actor: Caller,
    fmt: Annotated[str, Query(alias="format", description="csv or jsonl")] = "jsonl",
    case_type: Annotated[str | None, Query(alias="type")] = None,
    since: Annotated[str | None, _EXPORT_SINCE] = None,
    case: Annotated[str | None, Query(description="one case id")] = None,
) -> StreamingResponse:
    """Every case (auditors and administrators), streamed, with the head of its event chain."""
    return await _export(svc, actor, "cases", fmt, case_type, since, case)


@router.get("/api/exports/events", response_model=None, responses=_EXPORTED)
async def export_events(
    svc: Svc,
    actor: Caller,
    fmt: Annotated[str, Query(alias="format", description="csv or jsonl")] = "jsonl",
    case_type: Annotated[str | None, Query(alias="type")] = None,
    since: Annotated[str | None, _EXPORT_SINCE] = None,
    case: Annotated[str | None, Query(description="one case id")] = None,
) -> StreamingResponse:
    """Every case's audit trail (auditors and administrators), streamed, with each event's
    hash and prev_hash: `app/service/verify_export.py` recomputes the chains from the export."""
    return await _export(svc, actor, "events", fmt, case_type, since, case)


# Response shapes of the evidence upload (here rather than in app.api.schemas: its own edit).
class StoredEvidenceOut(BaseModel):
    sha256: str
    size: int
    new: bool  # false when these very bytes were already stored


class EvidenceOut(BaseModel):
    evidence: StoredEvidenceOut
    case: CaseOut


@router.post(
    "/api/cases/{case_id}/evidence",
    status_code=201,
    response_model=None,
    responses={201: {"model": EvidenceOut}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the file itself, as the whole body (no multipart)",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def upload_evidence(
    svc: Svc,
    actor: Caller,
    case_id: str,
    request: Request,
    description: Annotated[str | None, Query(description="what the file shows")] = None,
    url: Annotated[str | None, Query(description="where it was found")] = None,
    sha256: Annotated[str | None, Query(description="its SHA-256, checked on arrival")] = None,
) -> dict[str, Any]:
    """Store an evidence file (the body, streamed to disk, up to
    `CASEWORK_EVIDENCE_MAX_BYTES`, 100 MiB by default) and add it to an investigation as
    the investigator's `add_evidence`, with its SHA-256."""
    return await service.upload_evidence(
        svc,
        actor=actor,
        case_id=case_id,
        content=request.stream(),
        description=description,
        url=url,
        sha256=sha256,
        media_type=request.headers.get("content-type"),
    )


@router.get(
    "/api/cases/{case_id}/evidence/{sha256}",
    response_model=None,
    response_class=StreamingResponse,
    responses={200: {"description": "the file, as uploaded", "content": {"*/*": {}}}},
)
async def download_evidence(
    svc: Svc, actor: Caller, case_id: str, sha256: str
) -> StreamingResponse:
    """An evidence file of the case, once its bytes are checked against its SHA-256 (409
    `evidence_damaged` if they no longer match); for those who see the whole case."""
    found = await service.evidence_download(svc, actor=actor, case_id=case_id, sha256=sha256)
    return StreamingResponse(
        found.chunks(),  # a plain iterator: read in a thread, a chunk at a time
        media_type=found.media_type,
        headers=found.headers(),
    )
