"""Case IDs: `<PREFIX>-<YEAR>-<6 digits>`, numbered per prefix and year, never twice.

One `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` both creates a year's
counter and bumps it, so concurrent openers serialise on the counter row (on
PostgreSQL its row lock, on SQLite the database write lock) and never read the
same number; there is no read-then-write window to lose a race in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import CaseCounter

DIGITS = 6
# Both dialects spell the upsert alike; the generic insert has no ON CONFLICT.
_INSERT: dict[str, Callable[[type[CaseCounter]], Any]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def next_number(session: Session, key: str) -> int:
    """Bump the counter `key` (e.g. "IPA-2026") and return its new value; the caller commits."""
    dialect = session.get_bind().dialect.name
    if dialect not in _INSERT:
        raise NotImplementedError(f"case numbers need SQLite or PostgreSQL, not {dialect}")
    statement = (
        _INSERT[dialect](CaseCounter)
        .values(prefix=key, last=1)
        .on_conflict_do_update(
            index_elements=[CaseCounter.prefix], set_={"last": CaseCounter.last + 1}
        )
        .returning(CaseCounter.last)
    )
    number = session.execute(statement).scalar_one()
    return int(number)


def next_case_id(session: Session, prefix: str, year: int) -> str:
    key = f"{prefix}-{year}"
    return f"{key}-{next_number(session, key):0{DIGITS}d}"
