"""One error shape for every failure the API can answer: `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.service.errors import ServiceError, Unauthorized

log = logging.getLogger(__name__)

# Starlette's own refusals (no route, wrong method, body too large) by status.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    # RFC 6750: a 401 names the scheme the client should use.
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else {}
    headers.update(getattr(exc, "headers", None) or {})  # e.g. a 429's Retry-After
    return error_response(exc.status, exc.code, exc.message, headers or None)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"path: no such endpoint {request.url.path}"
    elif exc.status_code == 405:
        message = f"method: {request.method} is not allowed on {request.url.path}"
    code = _HTTP_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, message, dict(exc.headers or {}) or None)


def _where(loc: tuple[Any, ...]) -> str:
    """A validation error's location as the request names it: `details`, `limit`."""
    return ".".join(str(part) for part in loc[1:]) or str(loc[0] if loc else "request")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    loc = tuple(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        return error_response(400, "bad_request", "body: malformed JSON")
    if loc == ("body",):  # no body, or not an object
        return error_response(400, "bad_request", "body: expected a JSON object")
    return error_response(422, "invalid", f"{_where(loc)}: {first.get('msg', 'invalid')}")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
