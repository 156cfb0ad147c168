"""Who is signed in to the pages: a signed session cookie, and CSRF tokens for forms.

The cookie is Starlette's `SessionMiddleware` (signed with itsdangerous, so it can be
read but not forged), named `casework_session`, HttpOnly, SameSite=Lax, Secure when
`CASEWORK_BASE_URL` is https. It holds the person's email, the SHA-256 of the token
they signed in with, when they did, the CSRF token and flash messages. A sign-in lasts
12 hours from when it was made (`at`), however busy the session; revoking the token (or
the person leaving the directory) ends it at its next request.

The key is `CASEWORK_SECRET_KEY`, or, when that is unset (the embedded stack), a
random key generated once and kept in the data directory as `secret_key`, so
sessions survive a restart. Every web process of a deployment must share the key:
set the variable there.

With `CASEWORK_TRUSTED_USER_HEADER` set, an SSO proxy in front of Casework names
the person in that header and no token is asked for. Only set it when the proxy
strips the header from what clients send: Casework trusts it as is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any

from starlette.middleware import sessions
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app import service
from app.platform.keyfile import read_or_create
from app.platform.settings import Settings
from app.service.auth import token_hash
from app.service.errors import Forbidden, Unauthorized
from app.service.identity import authenticate_hash
from app.service.services import Services
from workflows.common import Actor

COOKIE = "casework_session"
SESSION_HOURS = 12  # a sign-in lasts a working day, then the token is asked for again
KEY_FILE = "secret_key"
CSRF_FIELD = "csrf_token"
ENDED = "ended"  # what a session that ended keeps: its CSRF token and whose it was (hashed)


class SignInRequired(Exception):
    """No one is signed in: the pages answer with a redirect to the sign-in form."""

    def __init__(self, next_path: str = "/") -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRefused(Forbidden):
    """A form posted without this session's token: from another site, or a stale page."""

    code = "csrf"


def secret_key(settings: Settings) -> bytes:
    """The session-signing key: the setting, else the data directory's (made once)."""
    if settings.secret_key:
        return settings.secret_key.encode("utf-8")
    key = read_or_create(settings.data_dir / KEY_FILE, lambda: secrets.token_hex(32))
    return key.strip().encode("ascii")


class SessionMiddleware:
    """Starlette's `SessionMiddleware`, built at the first request from the settings (given,
    or the app's `Services`': tests build the app before their services), with a sign-in
    older than SESSION_HOURS dropped as the cookie is read."""

    def __init__(self, app: ASGIApp, settings: Settings | None = None) -> None:
        self.app = app
        self.settings = settings
        self._signed: ASGIApp | None = None

    def _build(self, scope: Scope) -> ASGIApp:
        settings = self.settings
        if settings is None:
            services: Services = scope["app"].state.services
            settings = services.settings
        return sessions.SessionMiddleware(
            _ExpireSignIn(self.app),
            secret_key=secret_key(settings).decode("utf-8"),
            session_cookie=COOKIE,
            max_age=SESSION_HOURS * 3600,
            same_site="lax",
            https_only=settings.base_url.startswith("https://"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._signed is None:
            self._signed = self._build(scope)
        await self._signed(scope, receive, send)


class _ExpireSignIn:
    """A session whose sign-in (`at`) is older than SESSION_HOURS starts empty: the
    cookie's own age restarts with each change, the sign-in's does not."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = scope["session"]
        signed_in_at = session.get("at")
        if (
            isinstance(signed_in_at, int | float)
            and time.time() - signed_in_at > SESSION_HOURS * 3600
        ):
            _end(session)
        await self.app(scope, receive, send)


def csrf_token(request: Request) -> str:
    """This session's CSRF token, made on first use (a signed-out form needs one too)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, form: Mapping[str, Any]) -> None:
    """Refuse a POSTed form (403) unless it carries this session's token."""
    given = form.get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if (
        not isinstance(given, str)
        or not isinstance(expected, str)
        or not expected
        or not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
    ):
        raise CsrfRefused(
            "csrf_token: this form did not come from this sign-in, or it has expired. "
            "Go back, reload the page and try again."
        )


def start_session(request: Request, actor: Actor, token: str) -> None:
    """Sign `actor` in with `token`: a fresh session (new CSRF token), nothing kept from
    before. It keeps the token's hash, so revoking the token ends the session too."""
    request.session.clear()
    request.session.update(email=actor.email, token=token_hash(token), at=int(time.time()))
    csrf_token(request)


def end_session(request: Request) -> None:
    _end(request.session)


def _end(session: dict[str, Any]) -> None:
    """Empty the session, but for a note of the sign-in that ended: a form of that
    sign-in posted now still proves it came from this browser (`app.web.resume` keeps
    what it typed). The note names no one: the email is hashed."""
    csrf, email = session.get("csrf"), session.get("email")
    session.clear()
    if isinstance(csrf, str) and csrf and isinstance(email, str) and email:
        session[ENDED] = {"csrf": csrf, "who": who_hash(email)}


def who_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def ended_sign_in(request: Request) -> dict[str, str] | None:
    """The note `end_session` left ({"csrf", "who"}), if any."""
    ended = request.session.get(ENDED)
    if isinstance(ended, dict) and all(isinstance(ended.get(k), str) for k in ("csrf", "who")):
        return {"csrf": str(ended["csrf"]), "who": str(ended["who"])}
    return None


def tokens_match(given: object, expected: str) -> bool:
    return (
        isinstance(given, str)
        and bool(expected)
        and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
    )


def flash(request: Request, message: str) -> None:
    """A message for the next page this person sees (after a redirect)."""
    # Assigned, not appended in place: the session notices assignments only.
    request.session["flash"] = [*request.session.get("flash", []), message]


def pop_flashes(request: Request) -> list[str]:
    flashes = request.session.pop("flash", None)
    return [str(m) for m in flashes] if isinstance(flashes, list) else []


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def signed_in(request: Request) -> Actor:
    """The person using the pages (a FastAPI dependency); to /signin when no one is.

    Roles are read from the directory at every request, and the sign-in token checked
    (still unrevoked, still theirs), as for the API.
    """
    svc = services_of(request)
    header = svc.settings.trusted_user_header
    from_proxy = request.headers.get(header, "").strip() if header else ""
    if from_proxy:
        try:
            actor = await service.actor_for(svc, email=from_proxy)
        except Unauthorized:
            raise Forbidden(f"you ({from_proxy}) are not in Casework's directory") from None
    else:
        actor = await _session_actor(request, svc)
    request.state.me = actor
    return actor


async def _session_actor(request: Request, svc: Services) -> Actor:
    email, token = request.session.get("email"), request.session.get("token")
    if not isinstance(email, str) or not isinstance(token, str) or not email:
        raise SignInRequired(_here(request))
    try:
        actor = await authenticate_hash(svc, token_hash=token)
    except Unauthorized:  # the token was revoked, or they have left the directory
        end_session(request)
        raise SignInRequired(_here(request)) from None
    if actor.email != email:
        end_session(request)
        raise SignInRequired(_here(request))
    return actor


def _here(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{request.url.path}{query}" if request.method == "GET" else return_path(request)


def return_path(request: Request) -> str:
    """The page a form posted here came from, to return to after signing in: the case
    page for a case's forms (`/cases/ID/actions/NAME`, `/cases/ID/evidence`), the form
    itself for a new case (`/cases/new/TYPE`), else My work."""
    parts = request.url.path.strip("/").split("/")
    if len(parts) == 3 and parts[:2] == ["cases", "new"]:
        return f"/cases/new/{parts[2]}"
    if len(parts) >= 3 and parts[0] == "cases" and parts[1] != "new":
        return f"/cases/{parts[1]}"
    return "/"


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CsrfRefused",
    "SessionMiddleware",
    "SignInRequired",
    "check_csrf",
    "csrf_token",
    "end_session",
    "ended_sign_in",
    "flash",
    "pop_flashes",
    "return_path",
    "safe_next",
    "services_of",
    "signed_in",
    "start_session",
    "tokens_match",
    "who_hash",
]
