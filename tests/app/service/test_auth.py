"""API tokens: hashed at rest, several per person, revocable."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app import service
from app.service import identity
from app.service.auth import issue_token, person_for_token, revoke_all, revoke_token, token_hash
from app.service.errors import NotFound, Unauthorized
from app.service.people import import_people
from app.service.services import Services
from models import ApiToken

PEOPLE = "email,name,manager_email,roles\nann@dwp.gov.uk,Ann,,sac;auditor\nbob@dwp.gov.uk,Bob,,\n"


@pytest.fixture(autouse=True)
def directory(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        import_people(session, PEOPLE)


def issue(sessions: sessionmaker[Session], email: str) -> str:
    with sessions.begin() as session:
        return issue_token(session, email)


def holder(sessions: sessionmaker[Session], token: str) -> str | None:
    with sessions() as session:
        person = person_for_token(session, token)
        return person.email if person else None


def test_tokens_are_stored_only_as_hashes_and_older_ones_stay_valid(
    sessions: sessionmaker[Session],
) -> None:
    first, second = issue(sessions, "Ann@dwp.gov.uk"), issue(sessions, "ann@dwp.gov.uk")
    assert first != second and len(first) >= 43
    assert holder(sessions, first) == holder(sessions, second) == "ann@dwp.gov.uk"
    with sessions() as session:
        stored = set(session.scalars(select(ApiToken.token_hash)))
    assert stored == {token_hash(first), token_hash(second)}
    assert first not in stored


def test_unknown_tokens_and_people(sessions: sessionmaker[Session]) -> None:
    issue(sessions, "bob@dwp.gov.uk")
    assert holder(sessions, "not-a-token") is None
    assert holder(sessions, "") is None
    with pytest.raises(NotFound, match=r"email: no such person nobody@dwp\.gov\.uk"):
        issue(sessions, "nobody@dwp.gov.uk")


def test_revoking_one_token_or_all(sessions: sessionmaker[Session]) -> None:
    a1, a2, b1 = (
        issue(sessions, e) for e in ("ann@dwp.gov.uk", "ann@dwp.gov.uk", "bob@dwp.gov.uk")
    )
    with sessions.begin() as session:
        assert revoke_token(session, a1) is True
        assert revoke_token(session, a1) is False
    assert holder(sessions, a1) is None
    assert holder(sessions, a2) == "ann@dwp.gov.uk"
    with sessions.begin() as session:
        assert revoke_all(session, "ann@dwp.gov.uk") == 1
    assert holder(sessions, a2) is None
    assert holder(sessions, b1) == "bob@dwp.gov.uk"


async def test_authenticate_gives_the_actor_with_directory_roles(
    offline_services: Services, sessions: sessionmaker[Session]
) -> None:
    token = issue(sessions, "ann@dwp.gov.uk")
    actor = await identity.authenticate(offline_services, token=token)
    assert (actor.email, actor.roles, actor.name) == ("ann@dwp.gov.uk", ["sac", "auditor"], "Ann")
    with pytest.raises(Unauthorized):
        await identity.authenticate(offline_services, token=token + "x")
    with pytest.raises(Unauthorized, match="as: no such person"):
        await identity.actor_for(offline_services, email="ghost@dwp.gov.uk")


async def test_an_action_reads_its_case_with_the_token_and_still_sees_a_revocation_at_once(
    offline_services: Services, sessions: sessionmaker[Session]
) -> None:
    token = issue(sessions, "ann@dwp.gov.uk")
    actor, read = await service.authenticate_reading(
        offline_services, token=token, client="10.0.0.9", case_id="IPA-2026-000404"
    )
    assert actor.email == "ann@dwp.gov.uk"
    assert read == service.CaseRead("IPA-2026-000404", None)  # no such case: act says 404
    with sessions.begin() as session:
        revoke_token(session, token)
    with pytest.raises(Unauthorized):  # the very next request: no cached sign-in
        await service.authenticate_reading(
            offline_services, token=token, client="10.0.0.9", case_id="IPA-2026-000404"
        )
    with sessions.begin() as session:
        import_people(session, PEOPLE.replace("sac;auditor", "auditor"))
    fresh = issue(sessions, "ann@dwp.gov.uk")
    actor, _ = await service.authenticate_reading(
        offline_services, token=fresh, client="10.0.0.9", case_id=None
    )
    assert actor.roles == ["auditor"]  # a role withdrawn counts at the next request
