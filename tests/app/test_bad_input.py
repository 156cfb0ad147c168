"""Hostile input: line breaks aimed at mail headers are refused at intake or never reach
a header; HTML in any field is escaped in every HTML email, through the real templates
and a real SMTP server; malformed policy files and people CSVs are refused naming the
line."""

from __future__ import annotations

import re
from email.message import Message
from pathlib import Path
from typing import Any

import jinja2
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app import service
from app.cli.main import main
from app.platform.settings import DEFAULT_POLICY_FILE
from app.service.errors import Invalid
from app.service.people import import_people
from app.service.services import Services
from domain.mail import CONTEXT_DEFAULTS, MAIL_KINDS, TEMPLATES_DIR, make_template_env, render_mail
from domain.policy import PolicyError, load_policy, parse_policy
from models import Person
from tests.fixtures_temporal import SmtpSink, eventually
from tests.today import london_date
from workflows.common import Actor

HOSTILE = "<img src=x onerror=alert(1)>\"'&"
INJECTION = "x\r\nBcc: victim@evil.test"
EMPLOYEE = Actor("employee@dwp.gov.uk", [], "Employee")
IPA = {
    "account_kind": "individual_professional",
    "platform": "LinkedIn",
    "handle": HOSTILE,
    "justification": f"Line one{INJECTION}\r\n\r\n<script>alert(1)</script>",
    "device": "dwp_managed",
    "contact_email": "jo@example.com",
}


# ---- header injection: refused at intake --------------------------------------------------


@pytest.mark.parametrize(
    ("case_type", "details", "field"),
    [
        ("ipa_approval", {**IPA, "contact_email": f"jo@example.com{INJECTION}"}, "contact_email"),
        ("ipa_approval", {**IPA, "contact_email": "jo@example.com\nBcc: a@b.c"}, "contact_email"),
        (
            "abuse_investigation",
            {
                "category": "trolling",
                "platform": "X",
                "description": "Posts",
                "occurred_on": london_date(-7),
                "source": "staff_report",
                "content_urls": ["https://x.example/1"],
                "targets": [f"target@dwp.gov.uk{INJECTION}"],
                "perpetrator": {"kind": "unknown"},
            },
            "targets",
        ),
    ],
)
async def test_line_breaks_in_an_email_field_are_refused_at_intake(
    offline_services: Services, case_type: str, details: dict[str, Any], field: str
) -> None:
    """offline_services fails any call to Temporal: nothing starts."""
    with pytest.raises(Invalid, match=rf"^details\.{field}: must be an email address"):
        await service.open_case(
            offline_services, actor=EMPLOYEE, case_type=case_type, details=details
        )


def test_a_name_with_a_line_break_is_refused_naming_the_line(
    sessions: sessionmaker[Session],
) -> None:
    csv = f'email,name,manager_email,roles\nok@dwp.gov.uk,Ok,,\nbad@dwp.gov.uk,"Bad{INJECTION}",,\n'
    with sessions.begin() as session, pytest.raises(Invalid) as refused:
        import_people(session, csv)
    assert str(refused.value) == "line 3-4: name: must be one line, without control characters"


# ---- neutralised in rendering -------------------------------------------------------------


@pytest.fixture(scope="module")
def env() -> jinja2.Environment:
    return make_template_env()


def hostile_context() -> dict[str, Any]:
    """Every variable a template may read, hostile wherever it is text."""
    ctx: dict[str, Any] = {}
    for name, default in CONTEXT_DEFAULTS.items():
        if name == "level":
            ctx[name] = 2
        elif name == "details":
            ctx[name] = {
                "handle": HOSTILE,
                HOSTILE: HOSTILE,
                "list": [HOSTILE],
                "n": {"x": HOSTILE},
            }
        else:
            assert default in ("", None), name
            ctx[name] = f"{HOSTILE}{INJECTION}\u2028\x85Cc: other@evil.test"
    return ctx


@pytest.mark.parametrize("kind", MAIL_KINDS)
@pytest.mark.parametrize("confidential", [False, True])
def test_every_variable_is_escaped_in_html_and_kept_out_of_the_subject_line(
    env: jinja2.Environment, kind: str, confidential: bool
) -> None:
    mail = render_mail(env, kind, hostile_context(), confidential=confidential)
    assert "<img" not in mail.html and "<script" not in mail.html
    # Escaped, not dropped, where a non-confidential mail shows the value.
    if not confidential and kind not in ("welfare",):
        assert "&lt;img src=x onerror=alert(1)&gt;" in mail.html
    # Whatever reaches the subject is one line: no CR, LF or Unicode line break.
    assert not re.search(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", mail.subject)


def test_no_template_turns_escaping_off() -> None:
    for path in (TEMPLATES_DIR / "email").rglob("*.html"):
        text = path.read_text()
        for off in ("|safe", "| safe", "autoescape false", "Markup("):
            assert off not in text, f"{path.name}: {off}"


def parts_of(message: Message) -> dict[str, str]:
    parts: dict[str, str] = {}
    for part in message.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            parts[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return parts


async def test_hostile_details_through_the_worker_to_a_real_smtp_server(
    services: Services, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, _ = smtp_sink
    await service.open_case(services, actor=EMPLOYEE, case_type="ipa_approval", details=IPA)
    await eventually(lambda: bool(sink.to("manager@dwp.gov.uk")))
    for message in sink.messages:
        assert message["Bcc"] is None and message["Cc"] is None
        assert "evil.test" not in "".join(f"{k}: {v}" for k, v in message.items())
        html = parts_of(message)["text/html"]
        assert "<img" not in html and "<script" not in html
    html = parts_of(sink.to("manager@dwp.gov.uk")[0])["text/html"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


# ---- malformed policy files name the line -------------------------------------------------

SHIPPED = DEFAULT_POLICY_FILE.read_text()


def set_in_section(text: str, header: str, key: str, value: str) -> str:
    """`text` with the first `key = ...` line after `header` set to `value`."""
    start = text.index(header)
    found = re.compile(rf"^{key} = .*$", re.M).search(text, start)
    assert found is not None
    return text[: found.start()] + f"{key} = {value}" + text[found.end() :]


def line_of(text: str, needle: str, after: str = "") -> int:
    start = text.index(after) if after else 0
    return text[: text.index(needle, start)].count("\n") + 1


@pytest.mark.parametrize(
    ("change", "message", "needle", "after"),
    [
        (
            lambda t: t.replace('bank_holidays = "GB-ENG"', 'bank_holidays = "XX"'),
            "calendar.bank_holidays: 'XX' is not a supported bank-holiday region",
            "bank_holidays",
            "",
        ),
        (
            lambda t: set_in_section(t, "[sla.ipa_approval.sac_review]", "sla", '"soon"'),
            "sla.ipa_approval.sac_review.sla: 'soon' is not a duration",
            "sla = ",
            "[sla.ipa_approval.sac_review]",
        ),
        (
            lambda t: t.replace("[sla.ipa_approval.sac_review]", "[sla.ipa_approval.sac_revue]"),
            "sla.ipa_approval.sac_revue: unknown stage of ipa_approval",
            "[sla.ipa_approval.sac_revue]",
            "",
        ),
        (
            lambda t: t + '\n[sla.ipa_approval.active]\n"surprise" = 1\n',
            "the policy file is not valid TOML",
            "",
            "",
        ),
    ],
)
def test_a_malformed_policy_file_names_the_line(
    change: Any, message: str, needle: str, after: str
) -> None:
    text = change(SHIPPED)
    with pytest.raises(PolicyError) as refused:
        parse_policy(text)
    said = str(refused.value)
    assert said.startswith(message)
    if needle:
        assert said.endswith(f"(line {line_of(text, needle, after)})"), said
    else:  # tomllib's own message names line and column
        assert re.search(r"line \d+, column \d+", said), said


def test_a_missing_key_names_the_line_of_its_section(tmp_path: Path) -> None:
    header = "[sla.policy_exception.decision]"
    start = SHIPPED.index(header)
    body_end = SHIPPED.index("\n[", start + 1)
    section = SHIPPED[start:body_end]
    without_sla = "\n".join(ln for ln in section.splitlines() if not ln.startswith("sla ="))
    text = SHIPPED.replace(section, without_sla)
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    line = line_of(text, header)
    assert str(refused.value) == (
        f"{path}: sla.policy_exception.decision.sla: missing (required in this section) "
        f"(in [sla.policy_exception.decision], line {line})"
    )


def test_the_cli_refuses_a_malformed_policy_in_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SHIPPED.replace('escalate_every = "2wd"', 'escalate_every = "-1wd"', 1)
    path = tmp_path / "policy.toml"
    path.write_text(text)
    monkeypatch.setenv("CASEWORK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CASEWORK_POLICY_FILE", str(path))
    monkeypatch.setenv("CASEWORK_TEMPORAL_ADDRESS", "127.0.0.1:1")
    assert main(["web"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"casework: {path}: sla.")
    line = line_of(text, 'escalate_every = "-1wd"')
    assert err.rstrip().endswith(f"(line {line})")


# ---- malformed people CSVs name the line -------------------------------------------------

HEADER = "email,name,manager_email,roles\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('ok@dwp.gov.uk,Ok,,\nbad@dwp.gov.uk,"Unclosed,,\n', "line 3: row: unexpected end of data"),
        ('ok@dwp.gov.uk,Ok,,\n"bad@dwp.gov.uk"x,Bad,,\n', "line 3: row: ',' expected after '\"'"),
        ("ok@dwp.gov.uk,Ok,,\n\nbad@dwp.gov.uk,Bad,,sacc\n", "line 4: roles: unknown role 'sacc'"),
        ("ok@dwp.gov.uk,Ok,,,extra\n", "line 2: row: more values than columns"),
        ("ok@dwp.gov.uk,B\x00d,,\n", "line 2: name: must be one line"),
        ("ok@dwp.gov.uk,B\x1bd,,\n", "line 2: name: must be one line"),
        ("not-an-email,Bad,,\n", "line 2: email: 'not-an-email' is not an email address"),
    ],
)
def test_a_malformed_people_csv_names_the_line_and_changes_nothing(
    sessions: sessionmaker[Session], body: str, message: str
) -> None:
    with sessions.begin() as session, pytest.raises(Invalid) as refused:
        import_people(session, HEADER + body)
    assert str(refused.value).startswith(message)
    with sessions() as session:
        assert session.query(Person).count() == 0


def test_the_cli_refuses_a_malformed_people_csv_in_one_line(
    tmp_path: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(HEADER + 'a@dwp.gov.uk,A,,\nb@dwp.gov.uk,"B\r\nBcc: x@evil.test",,\n')
    monkeypatch.setenv("CASEWORK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CASEWORK_DATABASE_URL", db_url)
    assert main(["people", "import", str(path)]) == 1
    assert capsys.readouterr().err == (
        "casework: line 3-4: name: must be one line, without control characters\n"
    )
