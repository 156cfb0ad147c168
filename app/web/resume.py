"""A form sent after its sign-in ended: what was typed survives signing in again.

When a session has ended (signed out in another tab, expired, its token revoked) and a
form of it is posted, nothing is done: the person is sent to sign in, with `next` the
page the form was on (`session.return_path`: the case, or the new-case form). What
they typed goes with them in a cookie of its own, `casework_typed`: signed with the
session key (itsdangerous, so it cannot be forged or altered), HttpOnly, SameSite=Lax,
for TYPED_MINUTES, holding the form's fields (never its CSRF token or a file).

It is kept only for a form that proves it came from this browser's sign-in that ended
(its CSRF token is the one `session.end_session` noted): the CSRF rule still holds, so
another site cannot plant text in anyone's form. After signing in again, the page the
form was on shows it filled in as typed, with a note saying it was not sent: the person
checks it and sends it again, with the new sign-in's CSRF token. Nothing is replayed.
It is shown only to the same person (the note's hashed email), and read once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from app.web.forms import URLENCODED, read_form
from app.web.session import (
    CSRF_FIELD,
    ended_sign_in,
    flash,
    return_path,
    secret_key,
    services_of,
    tokens_match,
    who_hash,
)
from workflows.common import Actor

COOKIE = "casework_typed"
TYPED_MINUTES = 15
MAX_COOKIE = 3800  # browsers keep cookies of up to about 4 KB
SALT = "casework.typed-form"


@dataclass(frozen=True)
class Typed:
    """A form that was not sent: where it was posted, and its fields as typed."""

    posted_to: str
    values: dict[str, str]

    @property
    def action(self) -> str:
        """The action's name for a case's form (`/cases/ID/actions/NAME`), else ''."""
        parts = self.posted_to.strip("/").split("/")
        return parts[3] if len(parts) == 4 and parts[2] == "actions" else ""


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(services_of(request).settings), salt=SALT)


async def keep_typed(request: Request, response: Response) -> None:
    """On the redirect to sign in: keep a stale form's fields, if it proves its origin."""
    ended = ended_sign_in(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method != "POST" or ended is None or kind != URLENCODED:
        return
    try:
        form = await read_form(request)
    except Exception:  # a body that cannot be read is not kept: sign-in still follows
        return
    if not tokens_match(form.get(CSRF_FIELD), ended["csrf"]):
        return
    payload = {
        "to": request.url.path,
        "back": return_path(request),
        "who": ended["who"],
        "fields": {k: v for k, v in form.items() if k != CSRF_FIELD},
    }
    value = _serializer(request).dumps(payload)
    if len(value) > MAX_COOKIE:
        flash(
            request,
            "Your sign-in had ended, so your form was not sent, and it was too long to keep. "
            "Sign in again and fill it in once more.",
        )
        return
    response.set_cookie(
        COOKIE,
        value,
        max_age=TYPED_MINUTES * 60,
        httponly=True,
        samesite="lax",
        secure=services_of(request).settings.base_url.startswith("https://"),
    )
    flash(
        request,
        "Your sign-in had ended, so your form was not sent. Sign in again: what you typed "
        f"is kept for {TYPED_MINUTES} minutes, to check and send again.",
    )


def take_typed(request: Request, me: Actor) -> Typed | None:
    """The form kept for this page and this person, read once (render drops the cookie)."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    try:
        payload: Any = _serializer(request).loads(value, max_age=TYPED_MINUTES * 60)
    except (BadSignature, json.JSONDecodeError, UnicodeDecodeError):
        request.state.drop_typed = True
        return None
    if not isinstance(payload, dict) or payload.get("who") != who_hash(me.email):
        request.state.drop_typed = True  # another person's: never shown, and gone
        return None
    if payload.get("back") != request.url.path:
        return None  # for another page: left for it until it expires
    request.state.drop_typed = True
    fields = payload.get("fields")
    values = {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}
    return Typed(posted_to=str(payload.get("to", "")), values=values)


def forget_typed(request: Request, response: Response) -> None:
    """Drop the kept form once a page has used it (called by `render`)."""
    if getattr(request.state, "drop_typed", False):
        response.delete_cookie(COOKIE, httponly=True, samesite="lax")
