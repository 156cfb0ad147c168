"""Who is asking: a token's or an email's person, as the `Actor` the workflows trust.

Roles come from the directory (`people.roles`) at every request, so a role
granted or withdrawn by `casework people import` counts at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from app.service import auth
from app.service.errors import Unauthorized
from app.service.queries import managed_sql
from app.service.services import Services
from models import Person
from workflows.common import Actor

T = TypeVar("T")


def _actor(session: Session, person: Person) -> Actor:
    return actor_of(session, person)


def actor_of(session: Session, person: Person) -> Actor:
    """`person` as an Actor: their roles, and whom they manage (the chains below them in
    the directory, for `chain:requester`: an IPA is seen whole by the requester's chain)."""
    manages = [str(email) for email in session.scalars(managed_sql(person.email))]
    return Actor(person.email, roles=person.role_list, name=person.name, manages=manages)


async def authenticate(svc: Services, *, token: str) -> Actor:
    """The person an API token belongs to. Unauthorized if none (or they have left)."""
    actor, _ = await authenticate_reading(svc, token=token, also=_nothing)
    return actor


async def authenticate_reading(
    svc: Services, *, token: str, also: Callable[[Session], T]
) -> tuple[Actor, T]:
    """`authenticate`, and `also` read in the same transaction once the token is good:
    a request that needs its caller and a row (an action, its case) goes to the
    database once. The token is checked as at every request: revocation counts at once."""

    def work(session: Session) -> tuple[Actor, T] | None:
        person = auth.person_for_token(session, token)
        return None if person is None else (_actor(session, person), also(session))

    found = await svc.run(work)
    if found is None:
        raise Unauthorized("token: missing, unknown or revoked")
    return found


def _nothing(session: Session) -> None:
    return None


async def authenticate_hash(svc: Services, *, token_hash: str) -> Actor:
    """`authenticate` by the token's hash (a page session's). Unauthorized if revoked."""

    def work(session: Session) -> Actor | None:
        person = auth.person_for_token_hash(session, token_hash)
        return None if person is None else _actor(session, person)

    actor = await svc.run(work)
    if actor is None:
        raise Unauthorized("token: unknown or revoked")
    return actor


async def actor_for(svc: Services, *, email: str) -> Actor:
    """The person named by email (the CLI's `--as`). Unauthorized if not in the directory."""

    def work(session: Session) -> Actor | None:
        person = session.get(Person, email.strip().lower())
        return None if person is None else _actor(session, person)

    actor = await svc.run(work)
    if actor is None:
        raise Unauthorized(f"as: no such person {email}")
    return actor


async def whoami(svc: Services, *, actor: Actor) -> dict[str, Any]:
    person = await svc.run(lambda s: s.get(Person, actor.email))
    if person is None:
        raise Unauthorized(f"as: no such person {actor.email}")
    return {
        "email": person.email,
        "name": person.name,
        "roles": person.role_list,
        "manager": person.manager_email,
    }
