"""Refuse request bodies over a size limit with 413, before they are read into memory."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.http_errors import error_response

if TYPE_CHECKING:
    from app.service.services import Services

MAX_BODY = 1024 * 1024  # 1 MiB: far above any real case, far below a memory problem

# A route's own limit, if it has one (an evidence upload's is larger): None for the default.
LimitFor = Callable[[Scope], int | None]


class BodySizeLimit:
    """Pure ASGI middleware: checks Content-Length up front and counts chunked bodies.

    A body sent without a length is counted as it arrives; going over raises an
    HTTPException from `receive`, which FastAPI answers through the error handlers.
    Nothing is buffered here: a route that streams its body (an evidence upload) still
    holds one chunk at a time.
    """

    def __init__(self, app: ASGIApp, *, limit: int, limit_for: LimitFor | None = None) -> None:
        self.app = app
        self.limit = limit
        self.limit_for = limit_for

    def _limit(self, scope: Scope) -> int:
        own = self.limit_for(scope) if self.limit_for is not None else None
        return self.limit if own is None else own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                response = error_response(400, "bad_request", "Content-Length: not a number")
                await response(scope, receive, send)
                return
            if int(declared) > limit:
                await _too_large(limit)(scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _message(limit))
            return message

        await self.app(scope, counted, send)


def _message(limit: int) -> str:
    return f"body: larger than {limit} bytes"


def _too_large(limit: int) -> JSONResponse:
    return error_response(413, "too_large", _message(limit))


# The API's upload, and the case page's upload form (app.web.evidence).
_EVIDENCE_UPLOAD = re.compile(r"^(?:/api)?/cases/[^/]+/evidence$")


def evidence_upload_limit(scope: Scope) -> int | None:
    """An evidence upload's body limit (the settings' `evidence_max_bytes`), for
    `BodySizeLimit`; None elsewhere, where MAX_BODY holds."""
    if scope.get("method") != "POST" or not _EVIDENCE_UPLOAD.match(scope.get("path", "")):
        return None
    services: Services | None = getattr(scope["app"].state, "services", None)
    return services.settings.evidence_max_bytes if services is not None else None
