"""People's names from the directory, for showing beside their email addresses."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.service.services import Services
from models import Person


async def names_of(svc: Services, emails: Iterable[str | None]) -> dict[str, str]:
    """email -> name for those of `emails` the directory knows (one query)."""
    wanted = sorted({e.lower() for e in emails if e})
    if not wanted:
        return {}

    def read(session: Session) -> dict[str, str]:
        rows = session.execute(select(Person.email, Person.name).where(Person.email.in_(wanted)))
        return {email: name for email, name in rows if name}

    return await svc.run(read)
