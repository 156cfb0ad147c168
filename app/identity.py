"""Who is asking: a token's or an email's person, as the `Actor` the workflows trust.

Roles come from the directory (`people.roles`) at every request, so a role
granted or withdrawn by `casework people import` counts at once.
"""

from __future__ import annotations

from typing import Any

from app import auth
from app.bootstrap import Services
from app.errors import Unauthorized
from models import Person
from workflows.common import Actor


def _actor(person: Person) -> Actor:
    return Actor(person.email, roles=person.role_list, name=person.name)


async def authenticate(svc: Services, *, token: str) -> Actor:
    """The person an API token belongs to. Unauthorized if none (or they have left)."""
    person = await svc.run(lambda s: auth.person_for_token(s, token))
    if person is None:
        raise Unauthorized("token: missing, unknown or revoked")
    return _actor(person)


async def authenticate_hash(svc: Services, *, token_hash: str) -> Actor:
    """`authenticate` by the token's hash (a page session's). Unauthorized if revoked."""
    person = await svc.run(lambda s: auth.person_for_token_hash(s, token_hash))
    if person is None:
        raise Unauthorized("token: unknown or revoked")
    return _actor(person)


async def actor_for(svc: Services, *, email: str) -> Actor:
    """The person named by email (the CLI's `--as`). Unauthorized if not in the directory."""
    person = await svc.run(lambda s: s.get(Person, email.strip().lower()))
    if person is None:
        raise Unauthorized(f"as: no such person {email}")
    return _actor(person)


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
