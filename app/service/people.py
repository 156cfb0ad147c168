"""The directory import: `email,name,manager_email,roles` CSV, all or nothing.

Every row is checked before anything is written, so a file with one bad line
changes nothing and the error names that line and field. Re-importing the same
file changes nothing (created 0, updated 0).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.service.errors import Invalid
from models import Person
from models.people import ROLES
from workflows.rules import EMAIL_RE

COLUMNS = ("email", "name", "manager_email", "roles")
MAX_NAME = 200
# A name is greeted in emails and shown on pages: one line, no control characters
# (a CR or LF smuggled into a quoted CSV field must not reach anything line-based).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int


@dataclass(frozen=True)
class _Row:
    line: str  # "7", or "7-8" for a row with a value over two lines
    email: str
    name: str
    manager: str | None
    roles: str


def import_people(session: Session, csv_text: str) -> ImportResult:
    """Create or update people from CSV; the caller commits. Invalid names the line and field."""
    rows = _parse(csv_text)
    existing = {p.email: p for p in session.scalars(select(Person))}
    _check_managers(rows, {e: p.manager_email for e, p in existing.items()})
    created = updated = 0
    # Two passes: everyone exists before anyone points at a manager, so a manager may
    # come after their reports in the file without tripping the foreign key.
    for row in rows:
        person = existing.get(row.email)
        if person is None:
            session.add(Person(email=row.email, name=row.name, manager_email=None, roles=row.roles))
            created += 1
        elif (person.name, person.manager_email, person.roles) != (
            row.name,
            row.manager,
            row.roles,
        ):
            person.name, person.roles = row.name, row.roles
            updated += 1
    session.flush()
    for row in rows:
        person = existing.get(row.email) or session.get(Person, row.email)
        assert person is not None
        person.manager_email = row.manager
    session.flush()
    return ImportResult(created, updated)


def _parse(csv_text: str) -> list[_Row]:
    records = _records(csv_text.removeprefix("\ufeff"))
    _, header_values = next(records, ("1", []))
    header = [h.strip() for h in header_values]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise Invalid(f"line 1: header: missing column {', '.join(missing)}")
    rows: list[_Row] = []
    seen: set[str] = set()
    for line, record in records:
        if len(record) > len(header):
            raise Invalid(f"line {line}: row: more values than columns")
        given = dict(zip(header, record, strict=False))
        values = {k: (given.get(k) or "").strip() for k in COLUMNS}
        if not any(values.values()):
            continue
        row = _row(line, values)
        if row.email in seen:
            raise Invalid(f"line {line}: email: {row.email} appears twice")
        seen.add(row.email)
        rows.append(row)
    return rows


def _records(text: str) -> Iterator[tuple[str, list[str]]]:
    """(its line, or lines "7-8" when a quoted value spans two, values) for each non-blank
    row; a row the csv module cannot read (a stray or unclosed quote) names its line."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        first = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise Invalid(f"line {max(first, reader.line_num)}: row: {e}") from None
        if record:
            last = reader.line_num
            yield (str(last) if first >= last else f"{first}-{last}"), record


def _row(line: str, values: dict[str, str]) -> _Row:
    email = values["email"].lower()
    if not EMAIL_RE.match(email):
        raise Invalid(f"line {line}: email: {values['email']!r} is not an email address")
    name = values["name"]
    if not name or len(name) > MAX_NAME:
        raise Invalid(f"line {line}: name: required, at most {MAX_NAME} characters")
    if _CONTROL.search(name):
        raise Invalid(f"line {line}: name: must be one line, without control characters")
    manager = values["manager_email"].lower() or None
    if manager is not None and not EMAIL_RE.match(manager):
        raise Invalid(f"line {line}: manager_email: {manager!r} is not an email address")
    if manager == email:
        raise Invalid(f"line {line}: manager_email: a person cannot manage themselves")
    roles: list[str] = []
    for role in (r.strip() for r in values["roles"].split(";")):
        if role and role not in ROLES:
            raise Invalid(f"line {line}: roles: unknown role {role!r} (one of {', '.join(ROLES)})")
        if role and role not in roles:
            roles.append(role)
    return _Row(line, email, name, manager, ";".join(roles))


def _check_managers(rows: list[_Row], known: dict[str, str | None]) -> None:
    """Every manager exists (in the file or the directory) and no chain loops back.

    Escalation walks the management chain one level per period; a loop would
    escalate round it for ever.
    """
    chain = dict(known)
    chain.update({r.email: r.manager for r in rows})
    for row in rows:
        if row.manager is not None and row.manager not in chain:
            raise Invalid(f"line {row.line}: manager_email: no such person {row.manager}")
    for row in rows:
        seen = {row.email}
        boss = row.manager
        while boss is not None:
            if boss in seen:
                raise Invalid(
                    f"line {row.line}: manager_email: the management chain of "
                    f"{row.email} loops back through {boss}"
                )
            seen.add(boss)
            boss = chain.get(boss)
