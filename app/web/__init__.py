"""The staff web pages: server-rendered HTML over the same service layer as the API.

`install_pages` adds them to the API's app: the routes of `pages_router`, the
static files of `app/web/static/`, the design system's assets at `/assets`
(`app.web.assets`), the session middleware, and error pages. Paths
of the API (`/api`, `/healthz`, the OpenAPI document) keep their JSON errors;
every other path answers a person, in HTML. Each page module has its own `router`,
included below.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from app.platform.settings import Settings
from app.service.errors import ServiceError
from app.web.assets import assets_app
from app.web.render import current_actor, render
from app.web.resume import keep_typed
from app.web.session import SessionMiddleware, SignInRequired, signed_in

STATIC_DIR = Path(__file__).with_name("static")
API_PREFIXES = ("/api/", "/healthz", "/openapi.json", "/docs", "/redoc", "/scim/")

log = logging.getLogger(__name__)
pages_router = APIRouter(include_in_schema=False)

Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith(API_PREFIXES)


async def _error_page(request: Request, status: int, message: str) -> Response:
    if current_actor(request) is None and request.session.get("email"):
        # Failed before anyone was looked up (no such page): still show their navigation.
        with contextlib.suppress(Exception):
            await signed_in(request)
    template = {403: "forbidden.html", 404: "not_found.html"}.get(status, "error.html")
    return render(request, template, status_code=status, status=status, message=message)


async def _page_error(request: Request, exc: Exception) -> Response:
    """What a person sees when a page fails: a page, never JSON."""
    if isinstance(exc, SignInRequired):
        to_sign_in = RedirectResponse(
            f"/signin?next={quote(exc.next_path, safe='/')}", status_code=303
        )
        await keep_typed(request, to_sign_in)  # a stale form's input survives signing in
        return to_sign_in
    if isinstance(exc, ServiceError):
        if exc.status == 401:
            return RedirectResponse("/signin", status_code=303)
        return await _error_page(request, exc.status, exc.message)
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return await _error_page(request, 404, f"There is no page at {request.url.path}.")
        if exc.status_code == 405:
            return await _error_page(request, 405, f"{request.method} is not allowed here.")
        detail = exc.detail if isinstance(exc.detail, str) else "the request was refused"
        return await _error_page(request, exc.status_code, detail)
    if isinstance(exc, RequestValidationError):
        return await _error_page(request, 400, "The address or form was not understood.")
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return await _error_page(request, 500, "Something went wrong; the server log has the details.")


def _either(api_handler: Handler | None) -> Handler:
    """JSON from the API's handler for API paths, an HTML page for the rest."""

    async def handle(request: Request, exc: Exception) -> Response:
        if api_handler is not None and is_api_path(request.url.path):
            return await _call(api_handler, request, exc)
        try:
            return await _page_error(request, exc)
        except Exception:  # the error page itself failed (no services yet): say it plainly
            if api_handler is not None:
                return await _call(api_handler, request, exc)
            raise

    return handle


async def _call(handler: Handler, request: Request, exc: Exception) -> Response:
    response = handler(request, exc)
    return await response if inspect.isawaitable(response) else response


def install_pages(app: FastAPI, settings: Settings | None = None) -> None:
    """Add the pages to `app`, after the API's error handlers are installed.

    `settings` gives the session key; without it, the key comes from the app's
    `Services` at the first request (tests build the app before their services).
    """
    for kind in (ServiceError, HTTPException, RequestValidationError, Exception):
        app.add_exception_handler(kind, _either(app.exception_handlers.get(kind)))
    app.add_exception_handler(SignInRequired, _either(None))
    app.add_middleware(SessionMiddleware, settings=settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/assets", assets_app(), name="assets")  # GOV.UK and MOJ Frontend (npm)
    app.include_router(pages_router)


# The page modules, each with its own `router` (imported last: they use the names above).
from app.web import (  # noqa: E402
    audit,
    case_page,
    dashboard,
    evidence,
    mail,
    new_case,
    oidc,
    signin,
    work,
)

for _module in (signin, oidc, work, new_case, case_page, evidence, audit, dashboard, mail):
    pages_router.include_router(_module.router)
