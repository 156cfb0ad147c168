"""Escalation chains and team queues from the directory."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.directory import DirectoryActivities, manager_of, team_lead
from models import Person
from workflows.common import EscalationTarget, EscalationTargetRequest, TeamMembersRequest

# (email, manager, roles), managers before their reports: the foreign key is checked per row.
PEOPLE = [
    ("ceo@example.org", None, ""),
    ("director@example.org", "ceo@example.org", ""),
    ("manager@example.org", "director@example.org", ""),
    ("alice@example.org", "manager@example.org", ""),
    ("lead@example.org", "director@example.org", "sac;sac_lead"),
    ("zed@example.org", "ceo@example.org", "sac_lead"),
    ("bob@example.org", "lead@example.org", "sac"),
    ("carol@example.org", "lead@example.org", "sirt;sac"),
    ("sacred@example.org", "lead@example.org", "sacred"),
    # A loop in bad manager data: x -> y -> x, and z reports into it.
    ("x@example.org", None, ""),
    ("y@example.org", "x@example.org", ""),
    ("z@example.org", "x@example.org", ""),
]


@pytest.fixture
def directory(sessions: sessionmaker[Session]) -> DirectoryActivities:
    with sessions.begin() as session:
        for email, manager, roles in PEOPLE:
            name = email.split("@")[0].title()
            session.add(Person(email=email, name=name, manager_email=manager, roles=roles))
            session.flush()
        session.execute(
            update(Person)
            .where(Person.email == "x@example.org")
            .values(manager_email="y@example.org")
        )
    return DirectoryActivities(sessions)


def target(directory: DirectoryActivities, **request: object) -> EscalationTarget:
    req = EscalationTargetRequest(**request)  # type: ignore[arg-type]
    result: EscalationTarget = ActivityEnvironment().run(directory.escalation_target, req)
    return result


def test_person_owner_chain_goes_up_one_level_at_a_time(directory: DirectoryActivities) -> None:
    chain = [target(directory, level=n, owner="alice@example.org") for n in (1, 2, 3)]
    assert [(t.email, t.name, t.skipped) for t in chain] == [
        ("manager@example.org", "Manager", []),
        ("director@example.org", "Director", []),
        ("ceo@example.org", "Ceo", []),
    ]


def test_chain_end_and_unknown_owner(directory: DirectoryActivities) -> None:
    assert target(directory, level=4, owner="alice@example.org") == EscalationTarget(email=None)
    assert target(directory, level=1, owner="ceo@example.org").email is None
    assert target(directory, level=1, owner="nobody@example.org").email is None
    assert target(directory, level=1).email is None
    assert target(directory, level=0, owner="alice@example.org").email is None


def test_team_queue_escalates_to_the_lead_first(directory: DirectoryActivities) -> None:
    # Two people hold sac_lead: the first by email leads.
    emails = [target(directory, level=n, team="sac").email for n in (1, 2, 3, 4)]
    assert emails == ["lead@example.org", "director@example.org", "ceo@example.org", None]
    assert target(directory, level=1, team="hr").email is None


def test_excluded_people_are_skipped_and_recorded(directory: DirectoryActivities) -> None:
    # The manager is a party to the case: the chain passes over them.
    first = target(directory, level=1, owner="alice@example.org", exclude=["Manager@example.org"])
    assert (first.email, first.skipped) == ("director@example.org", ["manager@example.org"])
    second = target(directory, level=2, owner="alice@example.org", exclude=["manager@example.org"])
    assert (second.email, second.skipped) == ("ceo@example.org", ["manager@example.org"])
    past = target(directory, level=3, owner="alice@example.org", exclude=["manager@example.org"])
    assert (past.email, past.skipped) == (None, ["manager@example.org"])
    lead_excluded = target(directory, level=1, team="sac", exclude=["lead@example.org"])
    assert (lead_excluded.email, lead_excluded.skipped) == (
        "director@example.org",
        ["lead@example.org"],
    )


def test_cycles_in_manager_data_end_the_chain(directory: DirectoryActivities) -> None:
    assert target(directory, level=1, owner="x@example.org").email == "y@example.org"
    assert target(directory, level=2, owner="x@example.org").email is None
    assert [target(directory, level=n, owner="z@example.org").email for n in (1, 2, 3)] == [
        "x@example.org",
        "y@example.org",
        None,
    ]


def test_team_members_and_lookups(
    directory: DirectoryActivities, sessions: sessionmaker[Session]
) -> None:
    members = directory.team_members(TeamMembersRequest(team="sac"))
    assert members.emails == ["bob@example.org", "carol@example.org", "lead@example.org"]
    assert directory.team_members(TeamMembersRequest(team="sirt")).emails == ["carol@example.org"]
    assert directory.team_members(TeamMembersRequest(team="hr")).emails == []
    with sessions() as session:
        assert manager_of(session, "alice@example.org") == "manager@example.org"
        assert manager_of(session, "ceo@example.org") is None
        assert manager_of(session, "nobody@example.org") is None
        assert team_lead(session, "sac") == "lead@example.org"
        assert team_lead(session, "sirt") is None


def test_the_chain_passes_over_leavers_as_it_is_when_asked(
    directory: DirectoryActivities, sessions: sessionmaker[Session]
) -> None:
    env = ActivityEnvironment()
    ask = EscalationTargetRequest(level=1, owner="alice@example.org")
    assert env.run(directory.escalation_target, ask).email == "manager@example.org"
    with sessions.begin() as session:
        session.execute(
            update(Person).where(Person.email == "manager@example.org").values(active=False)
        )
    passed = env.run(directory.escalation_target, ask)
    assert (passed.email, passed.skipped) == ("director@example.org", ["manager@example.org"])
    # A manager change counts from the next escalation: the chain is read each time.
    with sessions.begin() as session:
        session.execute(
            update(Person)
            .where(Person.email == "alice@example.org")
            .values(manager_email="lead@example.org")
        )
    assert env.run(directory.escalation_target, ask).email == "lead@example.org"
    # A team lead who has left is no queue's lead.
    with sessions.begin() as session:
        session.execute(
            update(Person).where(Person.email == "lead@example.org").values(active=False)
        )
        assert team_lead(session, "sac") == "zed@example.org"
