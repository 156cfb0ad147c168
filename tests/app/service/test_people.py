"""`import_people`: the directory CSV, idempotent and all or nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.service.errors import Invalid
from app.service.people import ImportResult, import_people
from models import Person

HEADER = "email,name,manager_email,roles\n"


def run(sessions: sessionmaker[Session], text: str) -> ImportResult:
    with sessions.begin() as session:
        return import_people(session, text)


def people(sessions: sessionmaker[Session]) -> dict[str, tuple[str, str | None, str]]:
    with sessions() as session:
        return {
            p.email: (p.name, p.manager_email, p.roles) for p in session.scalars(select(Person))
        }


def refused(sessions: sessionmaker[Session], text: str) -> str:
    with pytest.raises(Invalid) as info:
        run(sessions, text)
    return info.value.message


def test_managers_may_come_after_their_reports_and_reimport_changes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    text = (
        "\ufeff"  # as spreadsheets save it
        + HEADER
        + "Employee@DWP.gov.uk , Employee ,manager@dwp.gov.uk,\n"
        + "\n"
        + "manager@dwp.gov.uk,Line Manager,boss@dwp.gov.uk,sac; sac_lead;sac\n"
        + "boss@dwp.gov.uk,Boss,,\n"
    )
    assert run(sessions, text) == ImportResult(created=3, updated=0)
    assert people(sessions) == {
        "employee@dwp.gov.uk": ("Employee", "manager@dwp.gov.uk", ""),
        "manager@dwp.gov.uk": ("Line Manager", "boss@dwp.gov.uk", "sac;sac_lead"),
        "boss@dwp.gov.uk": ("Boss", None, ""),
    }
    assert run(sessions, text) == ImportResult(created=0, updated=0)


def test_updates_count_only_changed_people(sessions: sessionmaker[Session]) -> None:
    run(sessions, HEADER + "a@dwp.gov.uk,A,,\nb@dwp.gov.uk,B,a@dwp.gov.uk,\n")
    result = run(
        sessions, HEADER + "a@dwp.gov.uk,A,,hr\nb@dwp.gov.uk,B,,\nc@dwp.gov.uk,C,b@dwp.gov.uk,\n"
    )
    assert result == ImportResult(created=1, updated=2)
    assert people(sessions)["b@dwp.gov.uk"] == ("B", None, "")
    assert people(sessions)["a@dwp.gov.uk"] == ("A", None, "hr")


def test_a_manager_already_in_the_directory_may_be_named(sessions: sessionmaker[Session]) -> None:
    run(sessions, HEADER + "boss@dwp.gov.uk,Boss,,\n")
    assert run(sessions, HEADER + "x@dwp.gov.uk,X,boss@dwp.gov.uk,\n").created == 1


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("not-an-email,A,,\n", "line 3: email: 'not-an-email' is not an email address"),
        ("b@dwp.gov.uk,,,\n", "line 3: name: required"),
        ("b@dwp.gov.uk,B,,sac;wizard\n", "line 3: roles: unknown role 'wizard'"),
        ("b@dwp.gov.uk,B,nobody@dwp.gov.uk,\n", "line 3: manager_email: no such person"),
        ("b@dwp.gov.uk,B,b@dwp.gov.uk,\n", "line 3: manager_email: a person cannot manage"),
        ("b@dwp.gov.uk,B,,\nB@dwp.gov.uk,B2,,\n", "line 4: email: b@dwp.gov.uk appears twice"),
        ("b@dwp.gov.uk,B,,,extra\n", "line 3: row: more values than columns"),
        (
            "b@dwp.gov.uk,B,c@dwp.gov.uk,\nc@dwp.gov.uk,C,b@dwp.gov.uk,\n",
            "line 3: manager_email: the management chain of b@dwp.gov.uk loops",
        ),
    ],
)
def test_a_bad_row_names_line_and_field_and_writes_nothing(
    sessions: sessionmaker[Session], rows: str, message: str
) -> None:
    # The good first row must not be written either: all or nothing.
    assert refused(sessions, HEADER + "good@dwp.gov.uk,Good,,\n" + rows).startswith(message)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == 0


def test_a_missing_column_is_named(sessions: sessionmaker[Session]) -> None:
    assert refused(sessions, "email,name\na@dwp.gov.uk,A\n") == (
        "line 1: header: missing column manager_email, roles"
    )
