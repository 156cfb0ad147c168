"""The demo directory `casework up` loads, and the banner that hands out its sign-in tokens.

The demo people (`demo_people.csv`) hold every role, so a new user can walk a
case through every stage with the tokens the banner prints.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.service.auth import issue_token
from app.service.people import import_people
from models import Person

READY_LINE = "Ctrl-C stops everything."  # the banner's last line: a script may wait for it

# The demo people the banner's examples use.
DEMO_EMPLOYEE = "alex.employee@dwp.gov.uk"
DEMO_MANAGER = "morgan.manager@dwp.gov.uk"
DEMO_SAC = "sam.sac@dwp.gov.uk"


def demo_csv() -> str:
    return resources.files("app.runtime").joinpath("demo_people.csv").read_text(encoding="utf-8")


@dataclass(frozen=True)
class DemoLogin:
    label: str  # the person's roles, or "manager" / "employee"
    email: str
    token: str


def prepare_demo(session: Session) -> tuple[int, list[DemoLogin]]:
    """Load the demo people into an empty directory; a new token for each one present.

    A directory that already has people is left as it is. The caller commits.
    """
    created = 0
    if not session.scalar(select(func.count()).select_from(Person)):
        created = import_people(session, demo_csv()).created
    managers = set(session.scalars(select(Person.manager_email).distinct()))
    logins = []
    for row in csv.DictReader(io.StringIO(demo_csv())):
        person = session.get(Person, row["email"])
        if person is not None:
            label = person.roles or ("manager" if person.email in managers else "employee")
            logins.append(DemoLogin(label, person.email, issue_token(session, person.email)))
    return created, logins


def banner(
    base_url: str,
    logins: list[DemoLogin],
    *,
    ui_url: str | None = None,
    mail: str | None = None,
) -> str:
    """What `casework up` prints on stdout once everything answers."""
    lines = [
        f"Casework is running at {base_url}",
        f"  Web pages:         {base_url}/signin (sign in with a token below)",
        f"  API documentation: {base_url}/docs",
    ]
    if ui_url:
        lines.append(f"  Temporal web UI:   {ui_url}")
    if mail:
        lines.append(f"  Caught mail:       {mail}")
        lines.append(f"  Mail page:         {base_url}/mail")
    lines.append("")
    if logins:
        lines += _login_table(logins)
    else:
        lines += ["No demo people here: `casework users token EMAIL` prints a token.", ""]
    tokens = {login.email: login.token for login in logins}
    if all(e in tokens for e in (DEMO_EMPLOYEE, DEMO_MANAGER, DEMO_SAC)):
        lines += _walkthrough(base_url, tokens)
    lines.append(READY_LINE)
    return "\n".join(lines)


def _login_table(logins: list[DemoLogin]) -> list[str]:
    width = max(len(login.email) for login in logins)
    role_width = max(len("ROLE"), *(len(login.label) for login in logins))
    return [
        "Demo people, with sign-in tokens (new each start; older ones stay valid):",
        f"  {'ROLE':<{role_width}}  {'EMAIL':<{width}}  TOKEN",
        *(
            f"  {login.label:<{role_width}}  {login.email:<{width}}  {login.token}"
            for login in logins
        ),
        "",
    ]


def _walkthrough(base_url: str, tokens: dict[str, str]) -> list[str]:
    """curl commands that take one IPA request from asking to approval."""

    def curl(who: str, path: str, body: dict[str, Any] | None = None) -> str:
        line = f'  curl -s -H "Authorization: Bearer ${who}"'
        if body is not None:
            line += f" -H 'Content-Type: application/json' -d '{json.dumps(body)}'"
        return f"{line} '{base_url}{path}'"

    request = {
        "type": "ipa_approval",
        "details": {
            "account_kind": "individual_professional",
            "platform": "X",
            "handle": "@alex_dwp",
            "justification": "Promote DWP vacancies",
            "device": "dwp_managed",
            "contact_email": DEMO_EMPLOYEE,
        },
    }
    return [
        "Try it: Alex asks for an account, Morgan (Alex's manager) endorses, Sam approves:",
        f"  export ALEX={tokens[DEMO_EMPLOYEE]} MORGAN={tokens[DEMO_MANAGER]} "
        f"SAM={tokens[DEMO_SAC]}",
        curl("ALEX", "/api/me"),
        curl("ALEX", "/api/cases", request),
        curl("MORGAN", "/api/cases/ID/actions", {"action": "endorse"}),
        curl("SAM", "/api/cases?stage=sac_review"),
        curl("SAM", "/api/cases/ID/actions", {"action": "approve"}),
        "",
    ]
