"""The mail page of the embedded stack: what the mail catcher received, newest first,
LISTED a page, paged by key (`?before=NAME` for older mail, `?after=NAME` for newer:
a message's file name, which sorts by arrival), so a page costs the same however much
mail there is (`app.service.mailbox.page_of`; bench/mail_page.py measures it).

Only where the catcher is in use (no `CASEWORK_SMTP_HOST`): a real relay's mail is
in people's inboxes, not here. In the demo anyone signed in reads the mail sent to
them, so each demo person sees their own reminders and escalations; auditors and
administrators read all of it. A message's HTML is shown in a sandboxed frame
(no script, no forms, no same-origin access), and its text part as plain text.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from app.platform.settings import Settings
from app.service.errors import Invalid, NotFound
from app.service.mailbox import CaughtMail, MailPage, mail_dir, page_of, read_message
from app.web.render import render
from app.web.session import services_of, signed_in
from workflows.common import Actor

router = APIRouter()

Me = Annotated[Actor, Depends(signed_in)]

READS_ALL = ("admin", "auditor")
LISTED = 50  # the messages a page lists
# The catcher's own file names (`<timestamp>-<n>.eml`): nothing else is ever opened.
MESSAGE_NAME = re.compile(r"^[0-9]{8}T[0-9]{12}Z-[0-9]{6}\.eml$")


def reads_all_mail(actor: Actor) -> bool:
    return any(role in actor.roles for role in READS_ALL)


def addressed_to(message: CaughtMail, actor: Actor) -> bool:
    return actor.email.lower() in (address.lower() for address in message.to)


def _catcher_dir(settings: Settings) -> Path:
    if settings.smtp_host is not None:
        raise NotFound(
            "mail: this server sends mail through an SMTP relay "
            f"({settings.smtp_host}); there is no mail catcher to show"
        )
    return settings.data_dir


def mail_page(
    settings: Settings,
    actor: Actor,
    *,
    before: str | None = None,
    after: str | None = None,
    limit: int = LISTED,
) -> MailPage:
    """A page of the caught messages `actor` may read, newest first."""
    for name, key in (("before", before), ("after", after)):
        if key is not None and not MESSAGE_NAME.match(key):
            raise Invalid(f"{name}: {key!r} is not a caught message's name")
    me = actor.email.lower()
    shown = None if reads_all_mail(actor) else lambda to: me in (a.lower() for a in to)
    return page_of(_catcher_dir(settings), shown=shown, before=before, after=after, limit=limit)


def mail_for(settings: Settings, actor: Actor, *, limit: int = LISTED) -> list[CaughtMail]:
    """The newest page of the caught messages `actor` may read."""
    return mail_page(settings, actor, limit=limit).messages


def message_for(settings: Settings, actor: Actor, name: str) -> CaughtMail:
    """One caught message; NotFound for a name that is not one, or not the actor's to read."""
    path = mail_dir(_catcher_dir(settings)) / name
    if not MESSAGE_NAME.match(name) or not path.is_file():
        raise NotFound(f"mail: no such message {name}")
    message = read_message(path)
    if not reads_all_mail(actor) and not addressed_to(message, actor):
        raise NotFound(f"mail: no such message {name}")
    return message


@router.get("/mail", response_class=HTMLResponse)
async def mail_list(
    request: Request, me: Me, before: str | None = None, after: str | None = None
) -> HTMLResponse:
    settings = services_of(request).settings
    page = await asyncio.to_thread(mail_page, settings, me, before=before, after=after)
    return render(
        request,
        "mail.html",
        active="mail",
        messages=page.messages,
        page=page,
        reads_all=reads_all_mail(me),
        listed=LISTED,
    )


@router.get("/mail/{name}", response_class=HTMLResponse)
async def message_page(request: Request, me: Me, name: str) -> HTMLResponse:
    message = await asyncio.to_thread(message_for, services_of(request).settings, me, name)
    return render(
        request,
        "mail_message.html",
        active="mail",
        message=message,
        reads_all=reads_all_mail(me),
    )
