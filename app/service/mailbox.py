"""The caught mail: what the embedded stack's mail catcher (`app.runtime.mailcatcher`)
keeps, one file a message, `<data_dir>/mail/<timestamp>-<n>.eml`, read back for the
mail page (`app.web.mail`) and the tests.

The catcher also appends each message's name and envelope recipients to
`mail/index.tsv`, so a page of one person's mail is found without opening every file
(`recipients`; a message missing from the index, such as one caught before it existed,
is read for its recipients instead). File names sort by arrival, so a page is a keyset
over names: those before (older than) or after (newer than) a given one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
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


INDEX = "index.tsv"  # one line a message: its file name, a tab, its recipients (comma-separated)


@dataclass(frozen=True)
class MailPage:
    """One page of caught mail, newest first, and the keys of the pages either side."""

    messages: list[CaughtMail]
    newer: str | None  # `after=` this name shows the page of newer mail; None at the newest
    older: str | None  # `before=` this name shows the page of older mail; None at the oldest


def message_names(data_dir: Path) -> list[str]:
    """Every caught message's file name, newest first (no file is opened)."""
    directory = mail_dir(data_dir)
    if not directory.is_dir():
        return []
    with os.scandir(directory) as entries:
        names = [e.name for e in entries if e.name.endswith(".eml") and e.name[0] != "."]
    return sorted(names, reverse=True)


def index_line(name: str, recipients: list[str]) -> str:
    return f"{name}\t{','.join(r.replace(chr(9), ' ').strip() for r in recipients)}\n"


def recipients(data_dir: Path) -> dict[str, list[str]]:
    """Each indexed message's recipients, by file name (`INDEX`, written by the catcher)."""
    try:
        text = (mail_dir(data_dir) / INDEX).read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        name, _, to = line.partition("\t")
        if name:
            found[name] = [a for a in to.split(",") if a]
    return found


def page_of(
    data_dir: Path,
    *,
    shown: Callable[[list[str]], bool] | None = None,
    before: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> MailPage:
    """A page of at most `limit` messages whose recipients `shown` accepts (all, if None),
    newest first: the newest, or those just older than `before`, or just newer than
    `after`. Only the page's own messages are parsed."""
    names = message_names(data_dir)
    directory = mail_dir(data_dir)
    if shown is not None:
        indexed = recipients(data_dir)
        names = [
            n
            for n in names
            if shown(indexed[n] if n in indexed else read_message(directory / n).to)
        ]
    if after is not None:
        newer = [n for n in names if n > after]
        picked = newer[-limit:]
    else:
        older = [n for n in names if before is None or n < before]
        picked = older[:limit]
    has_newer = bool(picked) and picked[0] != (names[0] if names else None)
    has_older = bool(picked) and picked[-1] != (names[-1] if names else None)
    if not picked and after is not None:  # nothing newer: the newest page
        return page_of(data_dir, shown=shown, limit=limit)
    return MailPage(
        messages=[read_summary(directory / n) for n in picked],
        newer=picked[0] if has_newer else None,
        older=picked[-1] if has_older else None,
    )


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


def read_summary(path: Path) -> CaughtMail:
    """A message's envelope and headers only, for a list (no body: `text` and `html` are
    blank), read with the quick compat32 parser and the headers decoded here: parsing
    each message in full is most of a list's time."""
    with path.open("rb") as fh:
        msg = BytesHeaderParser(policy=policy.compat32).parse(fh)
    to = [a.strip() for a in _header(msg, "X-RcptTo").split(",") if a.strip()]
    if not to:
        to = [address for _, address in getaddresses(msg.get_all("To", [])) if address]
    return CaughtMail(
        received_at=_received_at(path),
        sender=_header(msg, "X-MailFrom") or _header(msg, "From"),
        to=to,
        subject=_header(msg, "Subject"),
        message_id=_header(msg, "Message-ID").strip(),
        text="",
        name=path.name,
    )


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (LookupError, ValueError, UnicodeDecodeError):
        return str(value)


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
