"""Evidence files from the case page: an investigator uploads one (the API's upload, as
a form), and whoever sees the whole case downloads it, checked against its SHA-256."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile

from app import service
from app.service.errors import Invalid, NotFound, ServiceError
from app.web.case_page import UPLOAD, Refused, show_case
from app.web.session import check_csrf, flash, services_of, signed_in
from workflows.common import Actor

router = APIRouter()
Me = Annotated[Actor, Depends(signed_in)]
CHUNK = 64 * 1024


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


@router.post("/cases/{case_id}/evidence")
async def upload_evidence(request: Request, me: Me, case_id: str) -> Response:
    # Starlette spools the file to disk past 1 MiB; the body's limit is the API upload's.
    async with request.form(max_files=1, max_fields=10) as form:
        check_csrf(request, form)
        upload = form.get("file")
        description, url = _text(form.get("description")), _text(form.get("url"))
        typed = {"description": description or "", "url": url or ""}
        try:
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise Invalid("file: choose a file to upload")
            stored = await service.upload_evidence(
                services_of(request),
                actor=me,
                case_id=case_id,
                content=_chunks(upload),
                description=description,
                url=url,
                media_type=upload.content_type,
            )
        except NotFound:
            raise
        except ServiceError as e:
            if e.status >= 500:
                raise
            refused = Refused(UPLOAD, e, typed)
            return await show_case(request, me, case_id, refused)
    evidence = stored["evidence"]
    again = "" if evidence["new"] else " (the same file was already stored)"
    flash(
        request,
        f"Evidence added to {case_id}: {upload.filename}, {evidence['size']} bytes, "
        f"SHA-256 {evidence['sha256']}{again}.",
    )
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.get("/cases/{case_id}/evidence/{sha256}")
async def download_evidence(request: Request, me: Me, case_id: str, sha256: str) -> Response:
    found = await service.evidence_download(
        services_of(request), actor=me, case_id=case_id, sha256=sha256
    )
    return StreamingResponse(
        found.chunks(),
        media_type=found.media_type,
        headers=found.headers(),
    )
