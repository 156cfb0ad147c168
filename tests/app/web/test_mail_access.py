"""Who reads which caught message on the mail page, and what is never opened."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest

from app.platform.settings import Settings
from app.runtime.mailcatcher import MailCatcher
from app.service.errors import Invalid, NotFound
from app.service.mailbox import list_messages, recipients
from app.web.mail import mail_for, mail_page, message_for
from workflows.common import Actor

ALEX = Actor("alex.employee@dwp.gov.uk", [])
MORGAN = Actor("morgan.manager@dwp.gov.uk", [])
AUDITOR = Actor("ava.auditor@dwp.gov.uk", ["auditor"])
ADMIN = Actor("ali.admin@dwp.gov.uk", ["admin"])


def send(catcher: MailCatcher, to: str, subject: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "casework@localhost", to, subject
    msg.set_content(f"About {subject}")
    msg.add_alternative(f"<p onclick='x()'>About <b>{subject}</b></p>", subtype="html")
    with smtplib.SMTP(catcher.host, catcher.port) as smtp:
        smtp.send_message(msg)


@pytest.fixture
def caught(tmp_path: Path) -> Settings:
    with MailCatcher(tmp_path) as catcher:
        send(catcher, ALEX.email, "Case IPA-1 opened")
        send(catcher, MORGAN.email, "Action needed on IPA-1")
        send(catcher, ALEX.email.upper(), "Decision on IPA-1")
    assert len(list_messages(tmp_path)) == 3
    return Settings.from_env({"CASEWORK_DATA_DIR": str(tmp_path)})


def subjects(settings: Settings, actor: Actor) -> list[str]:
    return [m.subject for m in mail_for(settings, actor)]


def test_each_person_reads_their_own_mail_newest_first(caught: Settings) -> None:
    assert subjects(caught, ALEX) == ["Decision on IPA-1", "Case IPA-1 opened"]
    assert subjects(caught, MORGAN) == ["Action needed on IPA-1"]
    assert subjects(caught, Actor("nobody@dwp.gov.uk", [])) == []


def test_auditors_and_admins_read_all_of_it(caught: Settings) -> None:
    for actor in (AUDITOR, ADMIN):
        assert len(subjects(caught, actor)) == 3


def test_one_message_only_by_its_recipient_or_a_reader_of_all(caught: Settings) -> None:
    to_morgan = mail_for(caught, MORGAN)[0]
    assert message_for(caught, MORGAN, to_morgan.name).text.strip() == (
        "About Action needed on IPA-1"
    )
    assert message_for(caught, AUDITOR, to_morgan.name).subject == to_morgan.subject
    with pytest.raises(NotFound):
        message_for(caught, ALEX, to_morgan.name)


@pytest.mark.parametrize(
    "name", ["../casework.db", "..%2Fsecret_key", "x.eml", "", "20261126T000000000000Z-1.eml"]
)
def test_nothing_but_a_caught_message_is_opened(caught: Settings, name: str) -> None:
    (caught.data_dir / "casework.db").write_text("not mail")
    with pytest.raises(NotFound):
        message_for(caught, ADMIN, name)


def test_no_mail_page_when_mail_goes_to_a_relay(caught: Settings, tmp_path: Path) -> None:
    relayed = Settings.from_env(
        {"CASEWORK_DATA_DIR": str(tmp_path), "CASEWORK_SMTP_HOST": "relay.example"}
    )
    with pytest.raises(NotFound, match="relay"):
        mail_for(relayed, ADMIN)
    name = mail_for(caught, ADMIN)[0].name
    with pytest.raises(NotFound, match="relay"):
        message_for(relayed, ADMIN, name)


def test_the_mail_pages_by_key_newest_first(tmp_path: Path) -> None:
    """Pages of `limit` by file name: older with `before`, newer with `after`; a person's
    pages hold only their mail, found through the catcher's index."""
    with MailCatcher(tmp_path) as catcher:
        for n in range(7):
            send(catcher, ALEX.email if n % 2 == 0 else MORGAN.email, f"Mail {n}")
    settings = Settings.from_env({"CASEWORK_DATA_DIR": str(tmp_path)})
    assert len(recipients(tmp_path)) == 7  # every message indexed as it was caught

    first = mail_page(settings, AUDITOR, limit=3)
    assert [m.subject for m in first.messages] == ["Mail 6", "Mail 5", "Mail 4"]
    assert first.newer is None and first.older == first.messages[-1].name
    second = mail_page(settings, AUDITOR, before=first.older, limit=3)
    assert [m.subject for m in second.messages] == ["Mail 3", "Mail 2", "Mail 1"]
    last = mail_page(settings, AUDITOR, before=second.older, limit=3)
    assert [m.subject for m in last.messages] == ["Mail 0"] and last.older is None
    back = mail_page(settings, AUDITOR, after=last.newer, limit=3)
    assert [m.subject for m in back.messages] == ["Mail 3", "Mail 2", "Mail 1"]
    assert mail_page(settings, AUDITOR, after=back.newer, limit=3).messages == first.messages

    alex = mail_page(settings, ALEX, limit=2)
    assert [m.subject for m in alex.messages] == ["Mail 6", "Mail 4"]
    alex_older = mail_page(settings, ALEX, before=alex.older, limit=2)
    assert [m.subject for m in alex_older.messages] == ["Mail 2", "Mail 0"]
    assert alex_older.older is None

    # A message the index does not name (caught before it existed) is read instead.
    (tmp_path / "mail" / "index.tsv").unlink()
    assert [m.subject for m in mail_page(settings, MORGAN, limit=5).messages] == [
        "Mail 5",
        "Mail 3",
        "Mail 1",
    ]
    with pytest.raises(Invalid):
        mail_page(settings, ADMIN, before="../casework.db")


def test_a_page_shows_encoded_headers_as_sent(tmp_path: Path) -> None:
    with MailCatcher(tmp_path) as catcher:
        send(catcher, ALEX.email, "Décision : IPA-1 — approuvée " + "long " * 20)
    settings = Settings.from_env({"CASEWORK_DATA_DIR": str(tmp_path)})
    (listed,) = mail_page(settings, ALEX).messages
    assert listed.subject == list_messages(tmp_path)[0].subject
    assert listed.subject.startswith("Décision : IPA-1 — approuvée long")
    assert listed.to == [ALEX.email]
