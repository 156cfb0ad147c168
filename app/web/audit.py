"""The auditor's page of a case (`/cases/{id}/audit`): its audit chain verified by the
same verifier as `casework audit verify ID` (`app.service.audit`), and its export
downloaded (`app.service.exports`, as `GET /api/exports/...?case=ID`), for auditors and
administrators only (403 for anyone else, 404 for a case they may not see whole).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from app.service import exports
from app.service.audit import verify_case
from app.service.errors import NotFound
from app.web.render import render
from app.web.session import services_of, signed_in
from workflows.common import Actor

router = APIRouter()
Me = Annotated[Actor, Depends(signed_in)]

DOWNLOADS = tuple((what, fmt) for what in ("events", "cases") for fmt in exports.FORMATS)


@router.get("/cases/{case_id}/audit")
async def audit_page(request: Request, me: Me, case_id: str) -> Response:
    result = await verify_case(services_of(request), actor=me, case_id=case_id)
    return render(
        request,
        "audit.html",
        active="work",
        case_id=case_id,
        result=result,
        downloads=DOWNLOADS,
    )


@router.get("/cases/{case_id}/audit/{what}.{fmt}")
async def audit_export(request: Request, me: Me, case_id: str, what: str, fmt: str) -> Response:
    if (what, fmt) not in DOWNLOADS:
        raise NotFound(f"export: no such download {what}.{fmt}")
    svc = services_of(request)
    await verify_case(svc, actor=me, case_id=case_id)  # the same gate as the page
    export = await exports.export(svc, actor=me, what=what, format=fmt, case_id=case_id)
    return StreamingResponse(
        export.chunks,
        media_type=export.media_type,
        headers={"Content-Disposition": f'attachment; filename="{case_id}-{what}.{fmt}"'},
    )
