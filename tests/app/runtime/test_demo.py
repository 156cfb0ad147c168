"""The demo directory `casework up` loads, and the banner that prints its tokens."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy.orm import Session, sessionmaker

from app.runtime.demo import READY_LINE, DemoLogin, banner, demo_csv, prepare_demo
from app.service.people import ROLES, import_people

# One row of the banner's table: role, email, token.
TOKEN_ROW = re.compile(r"^  (\S+) +(\S+@\S+) +([A-Za-z0-9_-]{20,})$", re.MULTILINE)
EMPLOYEE, MANAGER, SAC = (
    "alex.employee@dwp.gov.uk",
    "morgan.manager@dwp.gov.uk",
    "sam.sac@dwp.gov.uk",
)


def demo_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(demo_csv())))


def test_demo_people_hold_every_role_at_the_organisation_domain() -> None:
    rows = demo_rows()
    held = {role for row in rows for role in row["roles"].split(";") if role}
    assert held == set(ROLES)
    assert all(row["email"].endswith("@dwp.gov.uk") for row in rows)
    for row in rows:  # a lead is in the team that they lead
        for role in row["roles"].split(";"):
            if role.endswith("_lead"):
                assert role.removesuffix("_lead") in row["roles"].split(";")


def test_demo_people_have_a_three_level_chain_and_leads_have_managers() -> None:
    manager = {row["email"]: row["manager_email"] or None for row in demo_rows()}
    chain, person = [], manager[EMPLOYEE]
    while person is not None:
        chain.append(person)
        person = manager[person]
    assert chain == [MANAGER, "harper.head@dwp.gov.uk", "dana.director@dwp.gov.uk"]
    leads = [r for r in demo_rows() if "_lead" in r["roles"]]
    assert {r["roles"] for r in leads} == {"sac;sac_lead", "sirt;sirt_lead", "hr;hr_lead"}
    assert all(manager[r["email"]] for r in leads)  # escalation goes beyond each lead


def test_demo_people_load_only_into_an_empty_directory(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        created, logins = prepare_demo(session)
    assert created == len(demo_rows())
    assert [login.email for login in logins] == [row["email"] for row in demo_rows()]
    labels = {login.email: login.label for login in logins}
    assert labels[EMPLOYEE] == "employee"
    assert labels[MANAGER] == "manager"
    assert labels["lee.saclead@dwp.gov.uk"] == "sac;sac_lead"

    with sessions.begin() as session:  # a restart: same people, new tokens
        again, new_logins = prepare_demo(session)
    assert again == 0
    assert {x.token for x in logins}.isdisjoint(x.token for x in new_logins)


def test_a_directory_of_real_people_is_left_alone(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        import_people(session, "email,name,manager_email,roles\nkit@dwp.gov.uk,Kit,,admin\n")
    with sessions.begin() as session:
        assert prepare_demo(session) == (0, [])


def test_the_banner_lists_every_login_and_ends_with_the_ready_line() -> None:
    logins = [DemoLogin("employee", EMPLOYEE, "t" * 43), DemoLogin("sac", SAC, "s" * 43)]
    text = banner("http://127.0.0.1:8000", logins, ui_url="http://127.0.0.1:8233")
    assert {m[2]: m[3] for m in TOKEN_ROW.finditer(text)} == {EMPLOYEE: "t" * 43, SAC: "s" * 43}
    assert "http://127.0.0.1:8233" in text
    assert "Try it" not in text  # the walkthrough needs Alex, Morgan and Sam
    assert text.endswith(READY_LINE)


def test_the_banner_walks_through_a_case_with_the_demo_tokens() -> None:
    logins = [
        DemoLogin("employee", EMPLOYEE, "a" * 43),
        DemoLogin("manager", MANAGER, "m" * 43),
        DemoLogin("sac", SAC, "s" * 43),
    ]
    text = banner("http://127.0.0.1:8000", logins, mail="/data/mail (SMTP 127.0.0.1:2525)")
    assert f"export ALEX={'a' * 43} MORGAN={'m' * 43} SAM={'s' * 43}" in text
    assert "'http://127.0.0.1:8000/api/cases/ID/actions'" in text
    assert "Caught mail:       /data/mail" in text
    assert "/signin (sign in with a token below)" in text
    assert "Mail page:         " in text
    assert "Temporal web UI" not in text
    assert text.endswith(READY_LINE)


def test_without_demo_people_the_banner_says_how_to_get_a_token() -> None:
    text = banner("http://127.0.0.1:8000", [])
    assert "`casework users token EMAIL`" in text
    assert not TOKEN_ROW.search(text)
    assert text.endswith(READY_LINE)
