"""The mail page of the embedded stack: what the mail catcher received, newest first.

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
from app.service.errors import NotFound
from app.service.mailbox import CaughtMail, list_messages, mail_dir, read_message
from app.web.render import render
from app.web.session import services_of, signed_in
from workflows.common import Actor

router = APIRouter()

Me = Annotated[Actor, Depends(signed_in)]

READS_ALL = ("admin", "auditor")
LISTED = 200  # the newest messages a page lists
SCANNED = 2000  # the newest messages read to find them: a long-running demo stays quick
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


def mail_for(settings: Settings, actor: Actor, *, limit: int = LISTED) -> list[CaughtMail]:
    """The caught messages `actor` may read, newest first."""
    messages = list_messages(_catcher_dir(settings), limit=SCANNED)
    if not reads_all_mail(actor):
        messages = [m for m in messages if addressed_to(m, actor)]
    return messages[:limit]


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
async def mail_page(request: Request, me: Me) -> HTMLResponse:
    settings = services_of(request).settings
    messages = await asyncio.to_thread(mail_for, settings, me)
    return render(
        request,
        "mail.html",
        active="mail",
        messages=messages,
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
