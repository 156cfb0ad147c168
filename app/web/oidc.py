"""Signing in through the organisation's OpenID Connect provider (`app.service.oidc`).

`/auth/login` keeps a fresh `state`, `nonce` and PKCE verifier in the signed session and
sends the browser to the provider; `/auth/callback` takes them out again (so a `state`
replayed, or from another browser, finds nothing and is refused), exchanges the code,
checks the ID token and signs in the directory's person it names. Refusals are pages
that say why, with a 4xx; nothing is created on the fly. Signing out also ends the
provider's session where it offers RP-initiated logout.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.service.errors import BadRequest, NotFound, ServiceError
from app.service.identity import actor_for_claims
from app.service.oidc import OidcClient, Pending, roles_from_claims
from app.web.render import render
from app.web.session import safe_next, services_of, start_oidc_session

router = APIRouter()
PENDING = "oidc_pending"


def _provider(request: Request) -> OidcClient:
    provider = services_of(request).oidc()
    if provider is None:
        raise NotFound("There is no single sign-on here: sign in with a token.")
    return provider


@router.get("/auth/login")
async def login(request: Request, next: str = "/") -> Response:
    url, pending = await _provider(request).start(safe_next(next))
    request.session[PENDING] = pending.as_dict()
    return RedirectResponse(url, status_code=303)


@router.get("/auth/callback")
async def callback(
    request: Request,
    state: str = "",
    code: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    provider = _provider(request)
    pending = Pending.from_session(request.session.pop(PENDING, None))
    try:
        if pending is None or not state or not hmac.compare_digest(state, pending.state):
            raise BadRequest(
                "state: this sign-in was not started here, or it has already been used. "
                "Start again from the sign-in page."
            )
        if error:
            raise BadRequest(
                f"The identity provider refused the sign-in: {error_description or error}"
            )
        if not code:
            raise BadRequest("code: the identity provider sent none")
        signed = await provider.finish(code=code, pending=pending)
        svc = services_of(request)
        actor = await actor_for_claims(svc, signed.claims)
    except ServiceError as refused:
        return _refused(request, refused)
    start_oidc_session(
        request,
        actor,
        id_token=signed.id_token,
        roles=roles_from_claims(svc.settings, signed.claims),
    )
    return RedirectResponse(pending.next, status_code=303)


def _refused(request: Request, refused: ServiceError) -> Response:
    status = 403 if refused.status == 401 else refused.status
    return render(
        request,
        "signin_refused.html",
        status_code=status,
        status=status,
        message=refused.message,
    )


async def provider_logout(request: Request) -> str | None:
    """Where to send a browser signing out of an OIDC session: the provider's end-session
    address (None: no provider, or it offers none)."""
    id_token = request.session.get("id_token")
    provider = services_of(request).oidc()
    if provider is None or not isinstance(id_token, str):
        return None
    try:
        return await provider.logout_url(id_token)
    except ServiceError:
        return None


__all__ = ["provider_logout", "router"]
