"""The send_mail activity: one email per event, never sent twice for the same event.

The Message-ID comes from (case id, event key), and a `sent_mail` row per Message-ID
records that it went. A retry finds the row and sends nothing; should the database
have failed after the relay took the message, the retry, on any worker, finds the
attempt's heartbeat instead, records the mail and sends nothing. Transient trouble
(relay down, 4xx) raises so Temporal retries with backoff; a permanent refusal (5xx)
is recorded as failed and returned, since retrying it would only fail again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, cast

import aiosmtplib
import jinja2
from sqlalchemy import Engine, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from activities.directory import leavers
from domain.mail import ANONYMOUS_KINDS, build_message, message_bytes, message_id, render_mail
from domain.records import append_events, in_transaction_retrying
from models import SentMail
from workflows.common import SYSTEM_ACTOR, EventIn, MailRequest, MailResult
from workflows.registry import SEND_MAIL_ACTIVITY

SENT = "sent"
ALREADY_SENT = "already_sent"
FAILED = "failed"
NO_RECIPIENTS = "no_recipients"


# The sent_mail row, read and written with statements built once (as domain.records
# writes events): through the ORM, a session.get and a flush cost more CPU than the
# database's own work.
_SENT_MAIL = cast(Table, SentMail.__table__)
_STATUS = select(_SENT_MAIL.c.status).where(_SENT_MAIL.c.message_id == bindparam("mid"))
_INSERT_SENT_MAIL = insert(_SENT_MAIL)
_UPDATE_SENT_MAIL = update(_SENT_MAIL).where(_SENT_MAIL.c.message_id == bindparam("mid"))


def _stored_status(session: Session, mid: str) -> str | None:
    status: str | None = session.connection().execute(_STATUS, {"mid": mid}).scalar()
    return status


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 30.0


class PermanentMailError(Exception):
    """The relay refused this message for good (5xx): retrying would fail again."""


class _SmtpPool:
    """A few idle relay connections kept open between mails, checked before reuse."""

    def __init__(self, config: SmtpConfig, max_idle: int = 4, max_idle_seconds: float = 60.0):
        self._config = config
        self._max_idle = max_idle
        self._max_idle_seconds = max_idle_seconds
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def acquire(self) -> aiosmtplib.SMTP:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # Connections belong to the loop that opened them.
            self._idle.clear()
            self._loop = loop
        while self._idle:
            client, since = self._idle.pop()
            if client.is_connected and time.monotonic() - since < self._max_idle_seconds:
                try:
                    await client.noop()
                    return client
                except (aiosmtplib.SMTPException, OSError):
                    pass
            client.close()
        c = self._config
        client = aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username,
            password=c.password,
            start_tls=c.starttls,
            timeout=c.timeout,
        )
        await client.connect()
        return client

    async def release(self, client: aiosmtplib.SMTP, *, reusable: bool) -> None:
        if reusable and client.is_connected and len(self._idle) < self._max_idle:
            self._idle.append((client, time.monotonic()))
        elif reusable and client.is_connected:
            await _quit(client)
        else:
            client.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _ in idle:
            await _quit(client)


def _delivered_by_an_earlier_attempt() -> dict[str, str] | None:
    """The refused recipients an earlier attempt of this activity heartbeated once the relay
    took the message (its record then failed), or None if no attempt got that far."""
    details = activity.info().heartbeat_details
    if details and isinstance(details[0], dict):
        return {str(a): str(r) for a, r in details[0].items()}
    return None


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


class NotificationActivities:
    def __init__(
        self,
        db: Engine | sessionmaker[Session],
        smtp: SmtpConfig,
        mail_from: str,
        base_url: str,
        env: jinja2.Environment,
    ) -> None:
        self._sessions = sessionmaker(db, expire_on_commit=False) if isinstance(db, Engine) else db
        self._mail_from = mail_from
        self._base_url = base_url.rstrip("/")
        self._env = env
        self._pool = _SmtpPool(smtp)
        # Sent, but not yet recorded (the database failed after the relay took it): a
        # retry in this worker records it without mailing again.
        self._unrecorded: OrderedDict[str, dict[str, str]] = OrderedDict()

    async def aclose(self) -> None:
        """Close idle relay connections; the worker calls this on shutdown."""
        await self._pool.close()

    @activity.defn(name=SEND_MAIL_ACTIVITY)
    async def send_mail(self, req: MailRequest) -> MailResult:
        anonymous = req.kind in ANONYMOUS_KINDS
        mid = message_id(req.case_id, req.key, opaque=anonymous)
        to = list(dict.fromkeys(a.strip() for a in req.to if a and a.strip()))
        if to:  # a person who has left is never mailed again, whenever the mail was asked
            gone = await asyncio.to_thread(self._leavers, to)
            to = [a for a in to if a.lower() not in gone]
        if not to:
            return MailResult(message_id=mid, status=NO_RECIPIENTS)
        if await asyncio.to_thread(self._status_of, mid) == SENT:
            return MailResult(message_id=mid, status=ALREADY_SENT)

        context: dict[str, Any] = {
            "now": datetime.now(UTC).isoformat(),
            **req.context,
            "case_id": req.case_id,
            "url": f"{self._base_url}/cases/{req.case_id}",
        }
        if req.stage is not None:
            context["stage"] = req.stage
        rendered = render_mail(self._env, req.kind, context, confidential=req.confidential)
        parts: dict[str, Any] = {
            "rendered": rendered,
            "sender": self._mail_from,
            "to": to,
            "message_id": mid,
            "case_id": None if anonymous else req.case_id,
        }
        try:
            # The wire bytes written directly; an address that is not ASCII needs the
            # library's message, which aiosmtplib sends with SMTPUTF8.
            msg = message_bytes(**parts) or build_message(**parts)
        except ValueError as exc:
            return await self._record_failure(req, mid, to, rendered.subject, str(exc))

        refused = self._unrecorded.get(mid)
        if refused is None:
            refused = _delivered_by_an_earlier_attempt()
        if refused is None:
            try:
                refused = await self._deliver(msg, to)
            except PermanentMailError as exc:
                return await self._record_failure(req, mid, to, rendered.subject, str(exc))
            self._remember_unrecorded(mid, refused)

        detail = "; ".join(f"{a}: {r}" for a, r in refused.items())
        data: dict[str, Any] = {"to": to, "kind": req.kind, "message_id": mid}
        data["subject"] = rendered.subject
        if refused:
            data["refused"] = refused
        await asyncio.to_thread(self._record, req, mid, to, rendered.subject, SENT, detail, data)
        self._unrecorded.pop(mid, None)
        activity.logger.info("mail %s sent to %s", mid, ", ".join(to))
        return MailResult(message_id=mid, status=SENT, detail=detail)

    async def _deliver(self, msg: bytes | EmailMessage, to: list[str]) -> dict[str, str]:
        """Send; returns the refused recipients when some were accepted.

        Connection trouble, 4xx and relay misconfiguration (auth, HELO, TLS) raise as
        they are, so the activity retries until the relay is back or fixed.
        """
        client = await self._pool.acquire()
        reusable = False
        try:
            if isinstance(msg, bytes):
                errors, _ = await client.sendmail(self._mail_from, to, msg)
            else:
                errors, _ = await client.send_message(msg, sender=self._mail_from, recipients=to)
            refused = {address: f"{r.code} {r.message}" for address, r in errors.items()}
            # The relay has it: tell Temporal at once, before anything else can be awaited
            # (releasing the connection may QUIT it), so the next attempt, on any worker,
            # finds the delivery in its heartbeat details. A kill inside this window still
            # resends: SMTP cannot be exactly-once (docs/RELIABILITY.md).
            activity.heartbeat(refused)
            reusable = True
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if any(r.code < 500 for r in exc.recipients):
                raise
            reusable = True
            raise PermanentMailError(
                "all recipients refused: "
                + "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            ) from exc
        except (
            aiosmtplib.SMTPAuthenticationError,
            aiosmtplib.SMTPHeloError,
            aiosmtplib.SMTPNotSupported,
        ):
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code < 500:
                raise
            reusable = True
            raise PermanentMailError(f"{exc.code} {exc.message}") from exc
        except ValueError as exc:  # an address aiosmtplib cannot put on the wire
            raise PermanentMailError(str(exc)) from exc
        finally:
            await self._pool.release(client, reusable=reusable)
        return refused

    async def _record_failure(
        self, req: MailRequest, mid: str, to: list[str], subject: str, error: str
    ) -> MailResult:
        data = {"to": to, "kind": req.kind, "message_id": mid, "subject": subject}
        data["error"] = error
        await asyncio.to_thread(self._record, req, mid, to, subject, FAILED, error, data)
        activity.logger.warning("mail %s refused for good: %s", mid, error)
        return MailResult(message_id=mid, status=FAILED, detail=error)

    def _remember_unrecorded(self, mid: str, refused: dict[str, str]) -> None:
        self._unrecorded[mid] = refused
        while len(self._unrecorded) > 1000:
            self._unrecorded.popitem(last=False)

    def _leavers(self, to: list[str]) -> set[str]:
        with self._sessions() as session:
            return leavers(session, to)

    def _status_of(self, mid: str) -> str | None:
        with self._sessions() as session:
            return _stored_status(session, mid)

    def _record(
        self,
        req: MailRequest,
        mid: str,
        to: list[str],
        subject: str,
        status: str,
        detail: str,
        data: dict[str, Any],
    ) -> None:
        """The sent_mail row and its `emailed` / `email_failed` event, in one transaction."""
        kind = "emailed" if status == SENT else "email_failed"
        event = EventIn(
            key=f"{req.key}:{kind}",
            kind=kind,
            actor=SYSTEM_ACTOR,
            at=datetime.now(UTC),
            stage=req.stage,
            data=data,
        )

        def work(session: Session) -> None:
            stored = _stored_status(session, mid)
            if stored == SENT:
                return  # a concurrent attempt recorded it; a sent mail stays sent
            row = {
                "recipients": ", ".join(to),
                "subject": subject,
                "status": status,
                "detail": detail,
                "sent_at": event.at,
            }
            if stored is None:
                new = {"message_id": mid, "case_id": req.case_id, "kind": req.kind, **row}
                session.connection().execute(_INSERT_SENT_MAIL, new)
            else:
                session.connection().execute(_UPDATE_SENT_MAIL, {"mid": mid, **row})
            append_events(session, req.case_id, [event])

        in_transaction_retrying(self._sessions, work)
