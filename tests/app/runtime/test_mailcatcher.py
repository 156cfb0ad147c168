"""The embedded mail catcher: a real SMTP server that keeps messages as files."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosmtplib
import pytest

from app.runtime.mailcatcher import MailCatcher
from app.service.mailbox import list_messages
from domain.mail import RenderedMail, build_message, message_id


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(tmp_path) as running:
        yield running


def send(port: int, subject: str, to: list[str], key: str = "e1") -> None:
    msg = build_message(
        rendered=RenderedMail(subject, f"text of {subject}\n", f"<p>{subject}</p>\n"),
        sender="casework@localhost",
        to=to,
        message_id=message_id("IPA-2026-000001", key),
        case_id="IPA-2026-000001",
    )
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.send_message(msg)


def test_free_port_is_chosen_and_known(catcher: MailCatcher) -> None:
    assert catcher.port > 0
    with socket.create_connection(("127.0.0.1", catcher.port), timeout=5) as sock:
        assert sock.recv(100).startswith(b"220")


def test_messages_are_stored_and_listed_newest_first(catcher: MailCatcher, tmp_path: Path) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    send(catcher.port, "First", ["a@example.org"], key="e1")
    send(catcher.port, "Second", ["b@example.org", "c@example.org"], key="e2")

    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2
    assert not list((tmp_path / "mail").glob(".*"))  # no partial files left behind

    first, second = reversed(list_messages(tmp_path))
    assert [m.subject for m in list_messages(tmp_path)] == ["Second", "First"]
    assert second.to == ["b@example.org", "c@example.org"]
    assert second.sender == "casework@localhost"
    assert second.message_id == "<IPA-2026-000001.e2@casework>"
    assert second.text == "text of Second\n"
    assert "<p>Second</p>" in second.html
    assert before <= first.received_at <= second.received_at <= datetime.now(UTC)
    assert first.name == files[0].name
    assert [m.subject for m in list_messages(tmp_path, limit=1)] == ["Second"]


def test_envelope_recipients_not_in_headers_are_shown(catcher: MailCatcher, tmp_path: Path) -> None:
    body = b"From: x@example.org\r\nTo: a@example.org\r\nSubject: Hi\r\n\r\nhello\r\n"
    with smtplib.SMTP("127.0.0.1", catcher.port, timeout=5) as client:
        client.sendmail("x@example.org", ["a@example.org", "hidden@example.org"], body)
    (mail,) = list_messages(tmp_path)
    assert mail.to == ["a@example.org", "hidden@example.org"]
    assert mail.text == "hello\n" and mail.html == ""


async def test_works_with_the_async_client(catcher: MailCatcher, tmp_path: Path) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=catcher.port) as client:
        await client.sendmail("x@example.org", ["a@example.org"], "Subject: async\r\n\r\nhi\r\n")
    assert [m.subject for m in list_messages(tmp_path)] == ["async"]


def test_given_port_and_restart_keep_earlier_messages(tmp_path: Path) -> None:
    with MailCatcher(tmp_path) as first:
        port = first.port
        send(port, "Before restart", ["a@example.org"])
    with MailCatcher(tmp_path, port=port) as second:
        assert second.port == port
        send(port, "After restart", ["a@example.org"], key="e2")
    assert [m.subject for m in list_messages(tmp_path)] == ["After restart", "Before restart"]


def test_no_messages_yet(tmp_path: Path) -> None:
    assert list_messages(tmp_path) == []
    with MailCatcher(tmp_path):
        assert list_messages(tmp_path) == []


def test_stop_is_idempotent(tmp_path: Path) -> None:
    catcher = MailCatcher(tmp_path)
    catcher.start()
    catcher.stop()
    catcher.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", catcher.port), timeout=1).close()
