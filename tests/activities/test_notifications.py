"""send_mail against a real SMTP server (aiosmtpd, in-process) and a real database."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities, SmtpConfig
from app.platform.db import session_factory
from domain.mail import make_template_env
from domain.records import upsert_case
from models import CaseEvent, SentMail
from workflows.common import CaseSnapshot, MailRequest, MailResult

CASE_ID = "IPA-2026-000001"
BASE_URL = "http://casework.test"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class RelayHandler:
    """Collects messages; `rcpt_reply` / `data_reply` make it refuse instead."""

    received: list[Received] = field(default_factory=list)
    sessions: set[int] = field(default_factory=set)
    rcpt_reply: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.rcpt_reply:
            return self.rcpt_reply[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sessions.add(id(session))
        if self.data_reply is not None:
            return self.data_reply
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


class Relay:
    """An aiosmtpd server on 127.0.0.1:port that can be stopped and started again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.handler = RelayHandler()
        self._controller: Controller | None = None

    def start(self) -> Relay:
        self._controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, server_hostname="relay.test"
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def relay() -> Iterator[Relay]:
    running = Relay(free_port()).start()
    yield running
    running.stop()


@pytest.fixture
def db(engine: Engine) -> sessionmaker[Session]:
    factory = session_factory(engine)
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    with factory.begin() as session:
        for case_id in (CASE_ID, "ABU-2026-000001"):
            upsert_case(
                session,
                CaseSnapshot(
                    id=case_id,
                    type="ipa_approval" if case_id == CASE_ID else "abuse_investigation",
                    status="open",
                    stage="sac_review",
                    requester="req@example.org",
                    opened_at=now,
                    updated_at=now,
                ),
            )
    return factory


def make_activities(db: sessionmaker[Session], port: int) -> NotificationActivities:
    return NotificationActivities(
        db,
        SmtpConfig(host="127.0.0.1", port=port, timeout=5),
        mail_from="casework@example.org",
        base_url=BASE_URL + "/",
        env=make_template_env(),
    )


@pytest.fixture
async def acts(db: sessionmaker[Session], relay: Relay) -> AsyncIterator[NotificationActivities]:
    activities = make_activities(db, relay.port)
    yield activities
    await activities.aclose()


def request(**overrides: Any) -> MailRequest:
    fields: dict[str, Any] = {
        "key": "e3:action_needed",
        "case_id": CASE_ID,
        "kind": "action_needed",
        "to": ["owner@example.org"],
        "stage": "sac_review",
        "context": {
            "case_type": "ipa_approval",
            "due_at": "2026-01-08T17:00:00+00:00",
            "recipient_name": "Olive Owner",
            "details": {"platform": "Mastodon", "justification": "Outreach <script>"},
        },
    }
    fields.update(overrides)
    return MailRequest(**fields)


async def send(acts: NotificationActivities, req: MailRequest) -> MailResult:
    result: MailResult = await ActivityEnvironment().run(acts.send_mail, req)
    return result


def sent_rows(db: sessionmaker[Session]) -> list[SentMail]:
    with db() as session:
        return list(session.scalars(select(SentMail)))


def events(db: sessionmaker[Session], case_id: str = CASE_ID) -> list[CaseEvent]:
    with db() as session:
        return list(
            session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
            )
        )


async def test_sends_once_and_records_it(
    acts: NotificationActivities, relay: Relay, db: sessionmaker[Session]
) -> None:
    result = await send(acts, request())

    assert result.status == "sent"
    assert result.message_id == "<IPA-2026-000001.e3=3Aaction_needed@casework>"
    (mail,) = relay.received
    assert mail.mail_from == "casework@example.org"
    assert mail.rcpt_tos == ["owner@example.org"]
    msg = mail.message
    assert msg["Message-ID"] == result.message_id
    assert msg["To"] == "owner@example.org"
    assert msg["Subject"].startswith("Action needed on IPA-2026-000001: SAC review")
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    assert f"{BASE_URL}/cases/{CASE_ID}" in text.get_content()
    assert "Outreach &lt;script&gt;" in html.get_content()

    (row,) = sent_rows(db)
    assert (row.message_id, row.case_id, row.status) == (result.message_id, CASE_ID, "sent")
    assert row.kind == "action_needed" and row.recipients == "owner@example.org"
    (event,) = events(db)
    assert (event.key, event.kind, event.actor, event.stage) == (
        "e3:action_needed:emailed",
        "emailed",
        "system",
        "sac_review",
    )
    assert event.data == {
        "to": ["owner@example.org"],
        "kind": "action_needed",
        "message_id": result.message_id,
        "subject": msg["Subject"],
    }


async def test_the_same_request_twice_sends_one_message(
    acts: NotificationActivities, relay: Relay, db: sessionmaker[Session]
) -> None:
    first = await send(acts, request())
    second = await send(acts, request())

    assert first.status == "sent"
    assert second == MailResult(message_id=first.message_id, status="already_sent")
    assert len(relay.received) == 1
    assert len(sent_rows(db)) == 1
    assert [e.kind for e in events(db)] == ["emailed"]


async def test_a_retry_on_another_worker_sends_nothing(
    acts: NotificationActivities, relay: Relay, db: sessionmaker[Session]
) -> None:
    await send(acts, request())
    other = make_activities(db, relay.port)
    try:
        assert (await send(other, request())).status == "already_sent"
    finally:
        await other.aclose()
    assert len(relay.received) == 1


async def test_different_events_are_different_mails(
    acts: NotificationActivities, relay: Relay, db: sessionmaker[Session]
) -> None:
    a = await send(acts, request(key="e3:action_needed"))
    b = await send(acts, request(key="e4:reminder", kind="reminder"))
    assert a.message_id != b.message_id
    assert [r.message["Message-ID"] for r in relay.received] == [a.message_id, b.message_id]
    assert [e.key for e in events(db)] == ["e3:action_needed:emailed", "e4:reminder:emailed"]
    # One connection served both.
    assert len(relay.handler.sessions) == 1


async def test_no_recipients_sends_nothing(
    acts: NotificationActivities, relay: Relay, db: sessionmaker[Session]
) -> None:
    result = await send(acts, request(to=[]))
    assert result.status == "no_recipients"
    assert (await send(acts, request(to=["", "  "]))).status == "no_recipients"
    assert relay.received == [] and sent_rows(db) == [] and events(db) == []


async def test_relay_down_raises_then_sends_when_it_is_back(db: sessionmaker[Session]) -> None:
    port = free_port()  # nothing listens here yet
    acts = make_activities(db, port)
    try:
        with pytest.raises(aiosmtplib.SMTPConnectError):
            await send(acts, request())
        assert sent_rows(db) == [] and events(db) == []

        relay = Relay(port).start()
        try:
            result = await send(acts, request())
        finally:
            relay.stop()
    finally:
        await acts.aclose()
    assert result.status == "sent"
    assert len(relay.received) == 1
    assert [e.kind for e in events(db)] == ["emailed"]


async def test_a_relay_restart_between_mails_is_survived(
    acts: NotificationActivities, relay: Relay, db: sessionmaker[Session]
) -> None:
    await send(acts, request(key="e1"))
    relay.stop()  # the pooled connection is now dead
    relay.start()
    result = await send(acts, request(key="e2"))
    assert result.status == "sent"
    assert len(relay.received) == 2


async def test_temporary_refusal_raises_for_a_retry(
    acts: NotificationActivities, relay: Relay, db: sessionmaker[Session]
) -> None:
    relay.handler.rcpt_reply["owner@example.org"] = "451 4.7.1 greylisted, try again later"
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await send(acts, request())
    relay.handler.data_reply = "452 4.3.1 insufficient storage"
    relay.handler.rcpt_reply.clear()
    with pytest.raises(aiosmtplib.SMTPDataError):
        await send(acts, request())
    assert sent_rows(db) == [] and events(db) == []

    relay.handler.data_reply = None
    assert (await send(acts, request())).status == "sent"
    assert len(relay.received) == 1


async def test_permanent_refusal_is_recorded_not_raised(
    acts: NotificationActivities, relay: Relay, db: sessionmaker[Session]
) -> None:
    relay.handler.rcpt_reply["owner@example.org"] = "550 5.1.1 no such user"
    result = await send(acts, request())

    assert result.status == "failed"
    assert "550" in result.detail and "owner@example.org" in result.detail
    assert relay.received == []
    (row,) = sent_rows(db)
    assert row.status == "failed" and "550" in row.detail
    (event,) = events(db)
    assert (event.kind, event.key) == ("email_failed", "e3:action_needed:email_failed")
    assert event.data["message_id"] == result.message_id
    assert "550" in event.data["error"]

    # Once the address is fixed at the relay, the same mail goes (once).
    relay.handler.rcpt_reply.clear()
    assert (await send(acts, request())).status == "sent"
    assert (await send(acts, request())).status == "already_sent"
    assert len(relay.received) == 1
    assert [e.kind for e in events(db)] == ["email_failed", "emailed"]
    assert [r.status for r in sent_rows(db)] == ["sent"]


async def test_permanent_refusal_of_the_message_body(
    acts: NotificationActivities, relay: Relay, db: sessionmaker[Session]
) -> None:
    relay.handler.data_reply = "554 5.6.0 message rejected"
    result = await send(acts, request())
    assert result.status == "failed" and result.detail.startswith("554")
    assert [e.kind for e in events(db)] == ["email_failed"]


async def test_some_recipients_refused_still_sends_to_the_rest(
    acts: NotificationActivities, relay: Relay, db: sessionmaker[Session]
) -> None:
    relay.handler.rcpt_reply["gone@example.org"] = "550 5.1.1 no such user"
    result = await send(acts, request(to=["owner@example.org", "gone@example.org"]))
    assert result.status == "sent" and "gone@example.org" in result.detail
    (mail,) = relay.received
    assert mail.rcpt_tos == ["owner@example.org"]
    (event,) = events(db)
    assert event.data["to"] == ["owner@example.org", "gone@example.org"]
    assert "gone@example.org" in event.data["refused"]


async def test_a_database_failure_after_sending_does_not_mail_twice(
    acts: NotificationActivities,
    relay: Relay,
    db: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_record = acts._record

    def failing_record(*args: Any) -> None:
        monkeypatch.setattr(acts, "_record", real_record)
        raise ConnectionError("database went away")

    monkeypatch.setattr(acts, "_record", failing_record)
    with pytest.raises(ConnectionError):
        await send(acts, request())
    assert len(relay.received) == 1 and sent_rows(db) == []

    assert (await send(acts, request())).status == "sent"
    assert len(relay.received) == 1
    assert [e.kind for e in events(db)] == ["emailed"]


async def test_a_retry_on_another_worker_after_the_database_failed_does_not_mail_twice(
    acts: NotificationActivities,
    relay: Relay,
    db: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by `make chaos` (postgres-outage, sqlite-locked): the relay took the message,
    its row could not be written, and the retry ran on the other worker, which had no
    memory of it and found no row, so it mailed again."""

    def database_gone(*args: Any) -> None:
        raise ConnectionError("database went away")

    monkeypatch.setattr(acts, "_record", database_gone)
    first = ActivityEnvironment()
    heartbeats: list[tuple[Any, ...]] = []
    first.on_heartbeat = lambda *details: heartbeats.append(details)
    with pytest.raises(ConnectionError):
        await first.run(acts.send_mail, request())
    assert len(relay.received) == 1 and sent_rows(db) == []

    # Temporal gives the next attempt the last heartbeat's details, wherever it runs.
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(
        first.info, attempt=2, heartbeat_details=heartbeats[-1] if heartbeats else []
    )
    other_worker = make_activities(db, relay.port)
    try:
        result = await retry.run(other_worker.send_mail, request())
    finally:
        await other_worker.aclose()

    assert result.status == "sent"
    assert len(relay.received) == 1
    assert [e.kind for e in events(db)] == ["emailed"]


async def test_confidential_mail_carries_only_the_id_and_link(
    acts: NotificationActivities, relay: Relay, db: sessionmaker[Session]
) -> None:
    case_id = "ABU-2026-000001"
    req = request(
        case_id=case_id,
        stage="investigation",
        confidential=True,
        context={
            "case_type": "abuse_investigation",
            "details": {"description": "Posted photos of a colleague", "category": "trolling"},
            "reason": "Evidence is late",
        },
    )
    result = await send(acts, req)
    assert result.status == "sent"
    raw = relay.received[0].message.as_string()
    for leak in ("Posted photos", "trolling", "investigation", "Evidence is late", "abuse"):
        assert leak not in raw
    assert f"{BASE_URL}/cases/{case_id}" in raw
    assert relay.received[0].message["Subject"] == f"Case {case_id} needs attention"


async def test_welfare_mail_names_no_case(
    acts: NotificationActivities, relay: Relay, db: sessionmaker[Session]
) -> None:
    req = request(
        case_id="ABU-2026-000001",
        key="e7:welfare",
        kind="welfare",
        to=["manager@example.org"],
        confidential=True,
        context={"recipient_name": "Mo Manager", "details": {"description": "secret"}},
    )
    result = await send(acts, req)
    assert result.status == "sent"
    raw = relay.received[0].message.as_string()
    assert "ABU" not in raw and "/cases/" not in raw and "secret" not in raw
    assert "ABU" not in result.message_id
    # The audit trail still knows which case it was about.
    (event,) = events(db, "ABU-2026-000001")
    assert event.kind == "emailed" and event.data["message_id"] == result.message_id


async def test_header_injection_in_a_recipient_is_a_permanent_failure(
    acts: NotificationActivities, relay: Relay, db: sessionmaker[Session]
) -> None:
    result = await send(acts, request(to=["owner@example.org\r\nBcc: x@evil.test"]))
    assert result.status == "failed" and "To header" in result.detail
    assert relay.received == []
    assert [e.kind for e in events(db)] == ["email_failed"]
