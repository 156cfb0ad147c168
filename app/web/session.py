"""Who is signed in to the pages: a signed session cookie, and CSRF tokens for forms.

The cookie holds a small JSON object (the person's email, the SHA-256 of the
token they signed in with, when they did, the CSRF token, flash messages) with an
HMAC-SHA256 of it, so it can be read but not forged; revoking the token (or the
person leaving the directory) ends the session at its next request.

The key is `CASEWORK_SECRET_KEY`, or, when that is unset (the embedded stack), a
random key generated once and kept in the data directory as `secret_key`, so
sessions survive a restart. Every web process of a deployment must share the key:
set the variable there.

With `CASEWORK_TRUSTED_USER_HEADER` set, an SSO proxy in front of Casework names
the person in that header and no token is asked for. Only set it when the proxy
strips the header from what clients send: Casework trusts it as is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(data: Mapping[str, Any], key: bytes) -> str:
    payload = _b64(json.dumps(dict(data), separators=(",", ":")).encode("utf-8"))
    mac = hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def unsign(value: str, key: bytes) -> dict[str, Any]:
    """The data of a cookie signed with `key`; {} for anything forged, mangled or stale."""
    payload, _, mac = value.partition(".")
    expected = _b64(hmac.new(key, payload.encode("ascii", "replace"), hashlib.sha256).digest())
    if not mac or not hmac.compare_digest(mac, expected):
        return {}
    try:
        data = json.loads(_unb64(payload))
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    signed_in_at = data.get("at")
    if isinstance(signed_in_at, int | float) and time.time() - signed_in_at > SESSION_HOURS * 3600:
        return {}
    return data


class SessionMiddleware:
    """Puts the cookie's data in `request.session` and writes it back when it changes.

    Written here rather than Starlette's (which needs itsdangerous) to keep to the
    standard library's hmac; `request.session` reads the same scope key.
    """

    def __init__(self, app: ASGIApp, settings: Settings | None = None) -> None:
        self.app = app
        self.settings = settings
        self._key: bytes | None = None

    def _settings(self, scope: Scope) -> Settings:
        if self.settings is not None:
            return self.settings
        services: Services = scope["app"].state.services
        return services.settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self._settings(scope)
        if self._key is None:
            self._key = secret_key(settings)
        key = self._key
        cookie = HTTPConnection(scope).cookies.get(COOKIE)
        data = unsign(cookie, key) if cookie else {}
        before = json.dumps(data, sort_keys=True)
        scope["session"] = data
        secure = "; Secure" if settings.base_url.startswith("https://") else ""

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                after = scope["session"]
                if json.dumps(after, sort_keys=True) != before:
                    headers = MutableHeaders(scope=message)
                    if after:
                        value = sign(after, key)
                        age = SESSION_HOURS * 3600
                    else:
                        value, age = "", 0
                    headers.append(
                        "Set-Cookie",
                        f"{COOKIE}={value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Lax{secure}",
                    )
            await send(message)

        await self.app(scope, receive, send_with_cookie)


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
    request.session.clear()


def flash(request: Request, message: str) -> None:
    """A message for the next page this person sees (after a redirect)."""
    request.session.setdefault("flash", []).append(message)


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
    return f"{request.url.path}{query}" if request.method == "GET" else "/"


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
    "flash",
    "pop_flashes",
    "safe_next",
    "services_of",
    "signed_in",
    "start_session",
]
