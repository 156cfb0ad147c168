"""Signing in with one's API token (or through an SSO proxy's header), and out again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from app import service
from app.service.errors import Unauthorized
from app.web.forms import Form, posted_form
from app.web.oidc import provider_logout
from app.web.render import render
from app.web.session import end_session, flash, safe_next, services_of, start_session

router = APIRouter()
Posted = Annotated[Form, Depends(posted_form)]


@router.get("/signin")
async def signin_form(request: Request, next: str = "/") -> Response:
    svc = services_of(request)
    header = svc.settings.trusted_user_header
    if request.session.get("email") or (header and request.headers.get(header)):
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "signin.html", next=safe_next(next), error=None, active="signin")


@router.post("/signin")
async def signin(request: Request, form: Posted) -> Response:
    next_path = safe_next(form.get("next"))
    token = str(form.get("token") or "").strip()
    client = request.client.host if request.client else None  # throttled per address too
    try:
        actor = await service.authenticate(services_of(request), token=token, client=client)
    except Unauthorized as refused:
        error = "That token is unknown or has been revoked" if token else "Enter your sign-in token"
        if (
            refused.status == 429
        ):  # too many failed attempts (app.service.throttle): say when to retry
            error = refused.message
        return render(
            request, "signin.html", status_code=refused.status, next=next_path, error=error
        )
    start_session(request, actor, token)
    return RedirectResponse(next_path, status_code=303)


@router.post("/signout")
async def signout(request: Request, form: Posted) -> Response:
    # Signed in through the provider: its session ends too (RP-initiated logout).
    at_provider = await provider_logout(request)
    end_session(request)
    flash(request, "You have signed out.")
    return RedirectResponse(at_provider or "/signin", status_code=303)
