"""The caught mail: what the embedded stack's mail catcher (`app.runtime.mailcatcher`)
keeps, one file a message, `<data_dir>/mail/<timestamp>-<n>.eml`, read back for the
mail page (`app.web.mail`) and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path

STAMP = "%Y%m%dT%H%M%S%fZ"  # a message file's name starts with when it came


@dataclass(frozen=True)
class CaughtMail:
    received_at: datetime
    sender: str
    to: list[str]
    subject: str
    message_id: str
    text: str
    html: str = ""
    # The file's name, for a page that shows one message.
    name: str = field(default="", compare=False)


def mail_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "mail"


def list_messages(data_dir: Path, limit: int | None = None) -> list[CaughtMail]:
    """The caught messages, newest first."""
    directory = mail_dir(data_dir)
    if not directory.is_dir():
        return []
    paths = sorted(directory.glob("*.eml"), key=lambda p: p.name, reverse=True)
    return [read_message(path) for path in paths[:limit]]


def read_message(path: Path) -> CaughtMail:
    with path.open("rb") as fh:
        msg = BytesParser(policy=policy.default).parse(fh)
    assert isinstance(msg, EmailMessage)
    to = [a.strip() for a in str(msg.get("X-RcptTo", "")).split(",") if a.strip()]
    if not to:
        to = [address for _, address in getaddresses(msg.get_all("To", [])) if address]
    return CaughtMail(
        received_at=_received_at(path),
        sender=str(msg.get("X-MailFrom") or msg.get("From", "")),
        to=to,
        subject=str(msg.get("Subject", "")),
        message_id=str(msg.get("Message-ID", "")).strip(),
        text=_body(msg, "plain"),
        html=_body(msg, "html"),
        name=path.name,
    )


def _received_at(path: Path) -> datetime:
    try:
        return datetime.strptime(path.stem.split("-")[0], STAMP).replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _body(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body(preferencelist=(subtype,))
    if part is None:
        return ""
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # an unknown charset: show what can be shown
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
