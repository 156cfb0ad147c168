"""Email rendering and message building, without SMTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import Any

import jinja2
import pytest

from domain import times
from domain.mail import (
    MAIL_KINDS,
    REDACTED_STAGE,
    TEMPLATES_DIR,
    RenderedMail,
    build_message,
    make_template_env,
    message_bytes,
    message_id,
    render_mail,
)

SECRET = "Tweets abusive messages about Jo Bloggs"


@pytest.fixture(scope="module")
def env() -> jinja2.Environment:
    return make_template_env()


def full_context(**overrides: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "case_id": "IPA-2026-000001",
        "case_type": "ipa_approval",
        "stage": "sac_review",
        "outcome": "rejected",
        "due_at": "2026-01-05T17:00:00+00:00",
        "owner": "sam.owner@example.org",
        "recipient_name": "Alex Example",
        "level": 2,
        "url": "http://casework.test/cases/IPA-2026-000001",
        "details": {"platform": "Mastodon", "handle": "@alex", "description": SECRET},
        "reason": "Not compliant with section 5.1",
    }
    ctx.update(overrides)
    return ctx


def all_parts(mail: RenderedMail) -> str:
    return "\n".join([mail.subject, mail.text, mail.html])


def test_templates_dir_is_the_repo_templates_folder() -> None:
    assert Path(__file__).resolve().parents[2] / "templates" == TEMPLATES_DIR
    for kind in MAIL_KINDS:
        for name in ("subject.txt", "body.txt", "body.html"):
            assert (TEMPLATES_DIR / "email" / kind / name).is_file(), (kind, name)


@pytest.mark.parametrize("kind", MAIL_KINDS)
def test_every_kind_renders_a_one_line_subject_and_both_bodies(
    env: jinja2.Environment, kind: str
) -> None:
    mail = render_mail(env, kind, full_context(), confidential=False)
    assert mail.subject and "\n" not in mail.subject and mail.subject == mail.subject.strip()
    assert "Alex Example" in mail.text
    assert mail.html.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in mail.html
    assert f"<title>{mail.subject}</title>" in mail.html
    # No external resources: no images, scripts, stylesheets or fonts fetched.
    for tag in ("<img", "<script", "<link", "<iframe", "@import", "url("):
        assert tag not in mail.html.lower()


@pytest.mark.parametrize("kind", sorted(set(MAIL_KINDS) - {"welfare"}))
def test_every_case_mail_links_to_the_case(env: jinja2.Environment, kind: str) -> None:
    mail = render_mail(env, kind, full_context(), confidential=False)
    url = "http://casework.test/cases/IPA-2026-000001"
    assert "IPA-2026-000001" in mail.subject
    assert url in mail.text
    assert f'href="{url}"' in mail.html


def test_each_kind_says_what_it_is_for(env: jinja2.Environment) -> None:
    ctx = full_context()

    def text(kind: str) -> str:
        return all_parts(render_mail(env, kind, ctx, confidential=False))

    assert "has been opened" in text("opened") and "What happens next" in text("opened")
    action = text("action_needed")
    assert "SAC review" in action and "Monday 5 January 2026 at 17:00 GMT" in action
    assert "Reminder" in text("reminder")
    escalation = text("escalation")
    assert "escalation level 2" in escalation and "sam.owner@example.org" in escalation
    assert "make sure it is acted on" in escalation
    decision = text("decision")
    assert "rejected" in decision and "Not compliant with section 5.1" in decision
    attestation = text("attestation_due")
    assert "3.2" in attestation and "@alex" in attestation and "Mastodon" in attestation


def test_escalation_says_how_long_overdue_from_now(env: jinja2.Environment) -> None:
    ctx = full_context(now="2026-01-07T18:30:00+00:00")
    mail = render_mail(env, "escalation", ctx, confidential=False)
    assert "overdue by 2 days, 1 hour" in mail.text


def test_missing_optional_values_still_render(env: jinja2.Environment) -> None:
    for kind in MAIL_KINDS:
        mail = render_mail(env, kind, {"case_id": "PEX-2026-000002"}, confidential=False)
        assert mail.subject
        assert "None" not in mail.subject and "None" not in mail.text


@pytest.mark.parametrize("kind", MAIL_KINDS)
def test_confidential_mail_shows_only_the_case_id_and_link(
    env: jinja2.Environment, kind: str
) -> None:
    ctx = full_context(
        case_id="ABU-2026-000007",
        case_type="abuse_investigation",
        stage="investigation",
        outcome="substantiated",
        url="http://casework.test/cases/ABU-2026-000007",
    )
    mail = render_mail(env, kind, ctx, confidential=True)
    everything = all_parts(mail)
    for leak in (
        SECRET,
        "Mastodon",
        "@alex",
        "investigation",
        "Investigation",
        "substantiated",
        "Not compliant",
        "abuse",
        "2026-01-05",
        "5 January",
    ):
        # The subject's own mail says what their outline shows: the outcome, and by when
        # they may appeal (the due time).
        if kind == "appeal_open" and leak in ("substantiated", "5 January"):
            continue
        assert leak not in everything, (kind, leak)
    if kind != "welfare":
        assert "ABU-2026-000007" in mail.subject
        assert "http://casework.test/cases/ABU-2026-000007" in mail.text


def test_confidential_redaction_is_enforced_by_the_renderer(tmp_path: Path) -> None:
    """A template that tries to print everything still gets nothing to print."""
    kind_dir = tmp_path / "email" / "action_needed"
    kind_dir.mkdir(parents=True)
    leaky = "{{ stage }}|{{ details }}|{{ reason }}|{{ outcome }}|{{ case_type }}|{{ case_id }}"
    for name in ("subject.txt", "body.txt", "body.html"):
        (kind_dir / name).write_text(leaky)
    mail = render_mail(
        make_template_env(tmp_path), "action_needed", full_context(), confidential=True
    )
    assert mail.text == f"{REDACTED_STAGE}|{{}}||None||IPA-2026-000001\n"
    assert SECRET not in all_parts(mail)


def test_welfare_mail_says_nothing_about_the_case(env: jinja2.Environment) -> None:
    ctx = full_context(case_id="ABU-2026-000009", colleague="Jo Bloggs")
    for confidential in (False, True):
        mail = render_mail(env, "welfare", ctx, confidential=confidential)
        everything = all_parts(mail)
        assert "Jo Bloggs" in everything and "support" in mail.subject
        for leak in ("ABU-2026-000009", "/cases/", SECRET, "sac_review", "SAC", "rejected"):
            assert leak not in everything


def test_hostile_details_are_escaped_in_html(env: jinja2.Environment) -> None:
    hostile = "<script>alert('x')</script>"
    ctx = full_context(
        details={"handle": hostile, hostile: "key too", "platform": "<b>X</b>"},
        recipient_name=hostile,
        reason=hostile,
        owner=hostile,
    )
    for kind in MAIL_KINDS:
        html = render_mail(env, kind, ctx, confidential=False).html
        assert "<script" not in html and "<b>X" not in html, kind
    html = render_mail(env, "action_needed", ctx, confidential=False).html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;b&gt;X&lt;/b&gt;" in html
    # Plain text is not HTML: it shows the characters as they were typed.
    text = render_mail(env, "action_needed", ctx, confidential=False).text
    assert hostile in text


def test_subject_is_one_line_even_when_values_have_newlines(env: jinja2.Environment) -> None:
    ctx = full_context(stage="sac\r\nBcc: victim@example.org", outcome="a\nb")
    for kind in MAIL_KINDS:
        subject = render_mail(env, kind, ctx, confidential=False).subject
        assert "\n" not in subject and "\r" not in subject


def test_unknown_kind_is_refused(env: jinja2.Environment) -> None:
    with pytest.raises(ValueError, match="unknown mail kind"):
        render_mail(env, "../../etc/passwd", {}, confidential=False)


def test_message_id_is_deterministic_and_distinct() -> None:
    assert message_id("IPA-2026-000001", "e12") == "<IPA-2026-000001.e12@casework>"
    assert message_id("IPA-2026-000001", "e12") == message_id("IPA-2026-000001", "e12")
    ids = {
        message_id("IPA-2026-000001", key)
        for key in ("e12", "e13", "e12:remind", "e12=3Aremind", "e12.remind", "e12-remind")
    }
    assert len(ids) == 6
    assert message_id("IPA-2026-000001", "e1") != message_id("IPA-2026-000002", "e1")
    for mid in ids:
        assert mid.startswith("<") and mid.endswith("@casework>")
        assert mid.count("@") == 1 and " " not in mid and ":" not in mid


def test_opaque_message_id_hides_the_case() -> None:
    mid = message_id("ABU-2026-000001", "e5:welfare", opaque=True)
    assert mid == message_id("ABU-2026-000001", "e5:welfare", opaque=True)
    assert "ABU" not in mid and mid != message_id("ABU-2026-000002", "e5:welfare", opaque=True)


RENDERED = RenderedMail(subject="Case IPA-1 opened", text="Hello\n", html="<p>Hello</p>\n")


def message_parts(**overrides: Any) -> dict[str, Any]:
    """The arguments of `build_message` and `message_bytes` for a plain mail, overridden."""
    kwargs: dict[str, Any] = {
        "rendered": RENDERED,
        "sender": "casework@example.org",
        "to": ["a@example.org", "b@example.org"],
        "message_id": message_id("IPA-1", "e1"),
        "case_id": "IPA-1",
        "date": datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
    }
    kwargs.update(overrides)
    return kwargs


def build(**overrides: Any) -> EmailMessage:
    return build_message(**message_parts(**overrides))


def test_build_message_is_multipart_alternative_text_then_html() -> None:
    msg = build()
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert msg["From"] == "casework@example.org"
    assert msg["To"] == "a@example.org, b@example.org"
    assert msg["Subject"] == "Case IPA-1 opened"
    assert msg["Message-ID"] == "<IPA-1.e1@casework>"
    assert msg["X-Casework-Case"] == "IPA-1"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"] == "Mon, 05 Jan 2026 09:30:00 +0000"
    # Survives the wire: serialise and parse back.
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(("plain",))
    assert body is not None and body.get_content() == "Hello\n"


def test_build_message_without_case_id_names_no_case() -> None:
    msg = build(
        rendered=RenderedMail("A colleague may need your support", "t\n", "<p>h</p>\n"),
        case_id=None,
        message_id=message_id("IPA-1", "e1", opaque=True),
    )
    assert "IPA-1" not in msg.as_string()


@pytest.mark.parametrize(
    ("header", "overrides"),
    [
        ("From", {"sender": "casework@example.org\r\nBcc: x@evil.test"}),
        ("To", {"to": ["a@example.org", "b@example.org\nBcc: x@evil.test"]}),
        ("Subject", {"rendered": RenderedMail("Hi\r\nBcc: x@evil.test", "t", "h")}),
        ("Message-ID", {"message_id": "<a@b>\nBcc: x@evil.test"}),
        ("X-Casework-Case", {"case_id": "IPA-1\rBcc: x@evil.test"}),
    ],
)
def test_build_message_refuses_header_injection(header: str, overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=f"in the {header} header"):
        build(**overrides)
    with pytest.raises(ValueError, match=f"in the {header} header"):
        wire(**overrides)


def test_build_message_needs_a_recipient() -> None:
    with pytest.raises(ValueError, match="no recipients"):
        build(to=[])
    with pytest.raises(ValueError, match="no recipients"):
        wire(to=[])


def wire(**overrides: Any) -> bytes | None:
    return message_bytes(
        **message_parts(**{"sender": "Casework <casework@example.org>", **overrides})
    )


def _text(part: MIMEPart) -> str:
    # Line breaks as the reader sees them: CRLF on the wire is a line break.
    content: str = part.get_content()
    return content.replace("\r\n", "\n")


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"case_id": None, "message_id": message_id("IPA-1", "e1", opaque=True)},
        {"to": [f"officer{i}@example.org" for i in range(40)]},
        {
            "rendered": RenderedMail(
                "Zoë's request — " + "a long subject " * 8,
                "Héllo Zoë\n" + "é" * 300 + "\n.\n..leading dots\r\nCRLF\n\n",
                "<p>" + "x" * 2000 + "</p>",
            )
        },
        {"rendered": RenderedMail("=?utf-8?q?not_an_encoded_word?=", "no newline", "")},
        {"rendered": RenderedMail("Tab\there", "a = sign \ntrailing space \n\tx\n", "<p/>\n")},
    ],
    ids=["plain", "anonymous", "many-recipients", "non-ascii", "encoded-word-lookalike", "qp"],
)
def test_message_bytes_read_back_as_build_message_says(overrides: dict[str, Any]) -> None:
    """The hand-written wire form parses to the headers and text the library builds."""
    raw = wire(**overrides)
    assert raw is not None
    assert raw.isascii()  # 7-bit clean: no 8BITMIME or SMTPUTF8 needed
    lines = raw.split(b"\r\n")
    assert all(b"\r" not in line and b"\n" not in line for line in lines)
    assert max(len(line) for line in lines) <= 78

    expected = build(**{"sender": "Casework <casework@example.org>", **overrides})
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    for name in ("From", "To", "Date", "Message-ID", "Auto-Submitted", "X-Casework-Case"):
        assert parsed[name] == expected[name], name
    assert parsed["References"] == expected["References"]
    rendered: RenderedMail = overrides.get("rendered", RENDERED)
    assert parsed["Subject"] == rendered.subject
    assert parsed.get_content_type() == "multipart/alternative"
    want = [(p.get_content_type(), _text(p)) for p in expected.iter_parts()]
    got = [(p.get_content_type(), _text(p)) for p in parsed.iter_parts()]
    assert got == want
    assert all(p.get_content_charset() == "utf-8" for p in parsed.iter_parts())


def test_message_bytes_leaves_an_address_that_is_not_ascii_to_build_message() -> None:
    # It needs SMTPUTF8, which aiosmtplib negotiates when it sends an EmailMessage.
    assert wire(to=["zoë@example.org"]) is None
    assert wire(sender="casework@exämple.org") is None


def test_the_subject_is_told_the_outcome_and_the_deadline_in_local_time(
    env: jinja2.Environment,
) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    ctx = full_context(case_id="DIS-2026-000003", outcome="final_written_warning")
    ctx["due_at"] = due.isoformat()
    mail = render_mail(env, "appeal_open", ctx, confidential=True)
    assert "DIS-2026-000003" in mail.subject
    text = " ".join(mail.text.split())
    assert "final written warning" in text
    assert f"until {times.long(due, 'Europe/London')}" in text
    assert SECRET not in all_parts(mail)
