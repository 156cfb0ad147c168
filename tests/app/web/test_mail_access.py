"""Who reads which caught message on the mail page, and what is never opened."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest

from app.platform.settings import Settings
from app.runtime.mailcatcher import MailCatcher
from app.service.errors import NotFound
from app.service.mailbox import list_messages
from app.web.mail import mail_for, message_for
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
