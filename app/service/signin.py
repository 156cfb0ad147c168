"""Signing in with an API token: `app.service.identity`'s lookup behind the throttle.

Repeated bad tokens from one address or with one token prefix are refused for a
while (`app.service.throttle`, 429); an action's caller and its case are read in
one trip to the database (`authenticate_reading`, `CaseRead`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.service import identity
from app.service.errors import Unauthorized
from app.service.services import Services
from app.service.throttle import keys_for
from models import Case
from workflows.common import Actor


async def authenticate(svc: Services, *, token: str, client: str | None = None) -> Actor:
    """The person an API token belongs to (Unauthorized if none), unless this address
    or this token's prefix has failed too often of late (TooManyAttempts, 429)."""
    actor, _ = await authenticate_reading(svc, token=token, client=client, case_id=None)
    return actor


@dataclass(frozen=True)
class CaseRead:
    """A case's row (None: no such case), read in the caller's sign-in transaction."""

    case_id: str
    row: Case | None


async def authenticate_reading(
    svc: Services, *, token: str, client: str | None, case_id: str | None
) -> tuple[Actor, CaseRead | None]:
    """`authenticate`, and the case `case_id` read in the same trip to the database (an
    action needs both: `act(read=...)`)."""
    keys = keys_for(client=client, token=token)
    svc.throttle.check(keys)

    def read(session: Session) -> CaseRead | None:
        return None if case_id is None else CaseRead(case_id, session.get(Case, case_id))

    try:
        return await identity.authenticate_reading(svc, token=token, also=read)
    except Unauthorized:
        svc.throttle.failed(keys)
        raise
