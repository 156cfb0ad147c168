"""Email rendering and message building: pure functions, no I/O but reading templates.

Templates live in `templates/email/<kind>/{subject.txt,body.txt,body.html}` over a
shared base. The notifications activity sends what these functions build.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime
from functools import partial
from pathlib import Path
from typing import Any

import jinja2

from domain import times
from domain.calendar import DEFAULT_TIMEZONE, zone
from domain.text import label, show, words

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
MESSAGE_ID_DOMAIN = "casework"

MAIL_KINDS = (
    "opened",
    "action_needed",
    "reminder",
    "escalation",
    "decision",
    "progress",
    "welfare",
    "attestation_due",
    "appeal_open",
)
# Mails that must not even say which case they come from (a welfare note to a
# target's manager): no case id in the body, the Message-ID or any header.
ANONYMOUS_KINDS = frozenset({"welfare"})
REDACTED_STAGE = "needs attention"

# Every variable a template may read, so a template typo fails loudly (StrictUndefined)
# while a caller may leave out what it does not know.
CONTEXT_DEFAULTS: dict[str, Any] = {
    "case_id": "",
    "case_type": "",
    "stage": None,
    "outcome": None,
    "due_at": None,
    "owner": None,
    "recipient_name": "",
    "level": 0,
    "url": "",
    "details": {},
    "reason": "",
    "overdue_by": "",
    "colleague": "",
    "progress": "",  # what just happened, for a progress mail ("endorsed")
}
# What a confidential mail may still say: which case, where to look, and for an
# escalation who is holding it up (the manager could not act without that).
_CONFIDENTIAL_KEEP = frozenset({"case_id", "url", "recipient_name"})
_CONFIDENTIAL_KEEP_BY_KIND = {
    "escalation": frozenset({"owner", "level"}),
    # To a referral's subject: the outcome and by when they may appeal (their outline's).
    "appeal_open": frozenset({"outcome", "due_at"}),
}
_ANONYMOUS_KEEP = frozenset({"recipient_name", "colleague"})

# RFC 5322 msg-id characters we pass through; everything else is escaped as =XX.
_MSGID_SAFE = re.compile(r"[A-Za-z0-9_-]")


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def make_template_env(
    path: Path | None = None, *, timezone: str = DEFAULT_TIMEZONE
) -> jinja2.Environment:
    """The Jinja environment for emails: HTML autoescaped, undefined names fatal, times
    shown in `timezone` (the policy file's).

    Each template is compiled once, on first use, and kept: templates ship with the code,
    so a worker does not look at the files again (three stat calls a mail) to see whether
    they changed. A template edit takes a restart, as a code edit does.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(path or TEMPLATES_DIR),
        auto_reload=False,
        cache_size=-1,  # every template kept: there are 3 per mail kind
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), disabled_extensions=("txt",), default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["label"] = label
    env.filters["words"] = words
    env.filters["show"] = show
    env.filters["when"] = partial(times.long, timezone=zone(timezone))
    return env


def render_mail(
    env: jinja2.Environment, kind: str, context: Mapping[str, Any], *, confidential: bool
) -> RenderedMail:
    """Subject (one line), text and HTML bodies of one email of `kind`."""
    if kind not in MAIL_KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    ctx = _template_context(kind, context, confidential=confidential)
    subject = " ".join(env.get_template(f"email/{kind}/subject.txt").render(ctx).split())
    text = env.get_template(f"email/{kind}/body.txt").render(ctx, subject=subject)
    html = env.get_template(f"email/{kind}/body.html").render(ctx, subject=subject)
    return RenderedMail(subject=subject, text=_tidy(text), html=html)


def message_id(case_id: str, key: str, *, opaque: bool = False) -> str:
    """The Message-ID of the mail about event `key` of a case: the same on every retry.

    `opaque` hides which case it is (a hash of both), for anonymous mails.
    """
    if opaque:
        digest = hashlib.sha256(f"{case_id}\0{key}".encode()).hexdigest()[:32]
        return f"<{digest}@{MESSAGE_ID_DOMAIN}>"
    return f"<{_msgid_part(case_id)}.{_msgid_part(key)}@{MESSAGE_ID_DOMAIN}>"


def build_message(
    *,
    rendered: RenderedMail,
    sender: str,
    to: Sequence[str],
    message_id: str,
    case_id: str | None,
    date: datetime | None = None,
) -> EmailMessage:
    """A multipart/alternative message; refuses CR or LF in any header (injection).

    `case_id` None leaves out the headers that name the case (anonymous mails).
    """
    headers = _checked_headers(rendered, sender, to, message_id, case_id)
    msg = EmailMessage()
    for name, value in _headers_in_order(headers, date):
        msg[name] = value
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg


def message_bytes(
    *,
    rendered: RenderedMail,
    sender: str,
    to: Sequence[str],
    message_id: str,
    case_id: str | None,
    date: datetime | None = None,
) -> bytes | None:
    """What `build_message` says, as the bytes that go on the wire (CRLF, 7-bit clean).

    Written out directly: the standard library's header registry, content manager and
    generator cost about 2.4 ms of CPU a mail, more than the rest of sending it
    (bench/RESULTS.md). Non-ASCII subjects and bodies are encoded (RFC 2047, quoted-
    printable) as the library would. None when an address is not ASCII, which needs
    SMTPUTF8: send `build_message`'s message then. Refuses what `build_message` refuses.
    """
    headers = _checked_headers(rendered, sender, to, message_id, case_id)
    if not all(value.isascii() for name, value in headers if name != "Subject"):
        return None
    text, html = _body_part(rendered.text, "plain"), _body_part(rendered.html, "html")
    boundary = f"=_casework_{secrets.token_hex(16)}"
    while boundary.encode() in text or boundary.encode() in html:  # 128 random bits
        boundary = f"=_casework_{secrets.token_hex(16)}"
    lines = [_header_line(name, value) for name, value in _headers_in_order(headers, date)]
    lines += [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"',
        "",
        f"--{boundary}",
    ]
    head = "\r\n".join(lines).encode("ascii") + b"\r\n"
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    return head + text + delimiter + html + f"\r\n--{boundary}--\r\n".encode("ascii")


def _checked_headers(
    rendered: RenderedMail, sender: str, to: Sequence[str], message_id: str, case_id: str | None
) -> list[tuple[str, str]]:
    if not to:
        raise ValueError("no recipients in the To header")
    headers: list[tuple[str, str]] = [
        ("From", sender),
        *(("To", address) for address in to),
        ("Subject", rendered.subject),
        ("Message-ID", message_id),
    ]
    if case_id is not None:
        headers.append(("X-Casework-Case", case_id))
    for name, value in headers:
        if "\r" in value or "\n" in value:
            raise ValueError(f"CR or LF in the {name} header")
    return headers


def _headers_in_order(
    headers: list[tuple[str, str]], date: datetime | None
) -> list[tuple[str, str]]:
    """The message's own headers (From to References), from the checked ones."""
    values = dict(headers)
    out = [
        ("From", values["From"]),
        ("To", ", ".join(value for name, value in headers if name == "To")),
        ("Subject", values["Subject"]),
        ("Date", format_datetime(date or datetime.now(UTC))),
        ("Message-ID", values["Message-ID"]),
        # RFC 3834: stops out-of-office replies coming back to an unread mailbox.
        ("Auto-Submitted", "auto-generated"),
    ]
    case_id = values.get("X-Casework-Case")
    if case_id is not None:
        out.append(("X-Casework-Case", case_id))
        # Mail clients thread every email about one case together.
        out.append(("References", f"<{_msgid_part(case_id)}@{MESSAGE_ID_DOMAIN}>"))
    return out


# RFC 5322: lines should stay within 78 characters, and must within 998.
_FOLD_AT = 78


def _header_line(name: str, value: str) -> str:
    """`Name: value`, folded where it is long; a non-ASCII subject as RFC 2047 words."""
    long = len(name) + 2 + len(value) > _FOLD_AT
    if name == "Subject" and (not value.isascii() or "=?" in value or long):
        # "=?" would read as the start of an encoded word: encode the whole subject then.
        charset = "us-ascii" if value.isascii() and "=?" not in value else "utf-8"
        return f"{name}: " + Header(value, charset, header_name=name).encode(linesep="\r\n")
    if name == "To" and long:
        # One address a line: an address list folds after its commas.
        return f"{name}: " + value.replace(", ", ",\r\n ")
    return f"{name}: {value}"


def _body_part(content: str, subtype: str) -> bytes:
    """One text part, headers and body, encoded as EmailMessage.set_content chooses:
    7-bit when it is ASCII in short lines, else quoted-printable."""
    # bytes.splitlines, as the library's: CR, LF and CRLF end a line, nothing else does.
    lines = content.encode("utf-8").splitlines()
    if content.isascii() and all(len(line) <= _FOLD_AT for line in lines):
        encoding, body = "7bit", b"\r\n".join(lines)
    else:
        encoded = binascii.b2a_qp(b"\n".join(lines), istext=True)
        encoding, body = "quoted-printable", encoded.replace(b"\n", b"\r\n")
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    # The line break ending the content: the delimiter after it begins with its own.
    return head.encode("ascii") + body + b"\r\n"


def _template_context(
    kind: str, context: Mapping[str, Any], *, confidential: bool
) -> dict[str, Any]:
    ctx = {**CONTEXT_DEFAULTS, **context}
    if kind in ANONYMOUS_KINDS:
        keep: frozenset[str] = _ANONYMOUS_KEEP
    elif confidential:
        keep = _CONFIDENTIAL_KEEP | _CONFIDENTIAL_KEEP_BY_KIND.get(kind, frozenset())
    else:
        if not ctx["overdue_by"] and ctx["due_at"] and context.get("now"):
            ctx["overdue_by"] = _overdue_by(ctx["due_at"], context["now"])
        ctx["details"] = dict(ctx["details"] or {})
        ctx["confidential"] = False
        return ctx
    # Redacted here, not just in the templates, so a template edit cannot leak.
    redacted = {**CONTEXT_DEFAULTS, **{k: ctx[k] for k in keep}}
    redacted["stage"] = REDACTED_STAGE
    redacted["details"] = {}
    redacted["confidential"] = True
    return redacted


def _tidy(text: str) -> str:
    """Collapse the blank lines that optional template sections leave behind."""
    lines = [line.rstrip() if line != "-- " else line for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line == "" and (not out or out[-1] == ""):
            continue
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def _msgid_part(value: str) -> str:
    # Injective: "=" itself is escaped, so two different keys never share an id.
    return "".join(c if _MSGID_SAFE.fullmatch(c) else f"={ord(c):02X}" for c in value)


def _overdue_by(due_at: object, now: object) -> str:
    due, current = times.instant(due_at), times.instant(now)
    if due is None or current is None or current <= due:
        return ""
    minutes = int((current - due).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour")] if days else [(hours, "hour"), (minutes, "minute")]
    shown = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n]
    return ", ".join(shown) or "less than a minute"
