"""The directory as an identity provider keeps it through SCIM (`app.api.scim`): people
with their manager and whether they are active, and groups that give roles.

Plain data in and out (`PersonRecord`, `GroupRecord`); the SCIM wire format is the API's
part. A person is addressed by `scim_id` (given on first sight, stable), their email is
the directory's key and does not change. Deactivation goes through `app.service.leavers`
so a leaver's work moves on exactly as with `casework people deactivate`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.service import leavers
from app.service.errors import Conflict, Invalid, NotFound
from app.service.people import MAX_NAME
from app.service.services import Services
from models import Person
from models.people import ROLES, ScimGroup
from workflows.rules import EMAIL_RE

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass
class PersonRecord:
    id: str
    email: str
    name: str
    active: bool
    user_name: str = ""
    resource: dict[str, Any] | None = None
    manager_id: str | None = None
    manager_email: str | None = None
    external_id: str | None = None
    groups: list[tuple[str, str]] = field(default_factory=list)  # (id, display name)


@dataclass
class GroupRecord:
    id: str
    display_name: str
    external_id: str | None = None
    members: list[tuple[str, str]] = field(default_factory=list)  # (person id, email)
    resource: dict[str, Any] | None = None


# ---- people ------------------------------------------------------------------------------


def _scim_id(person: Person) -> str:
    """The person's SCIM id, given on first sight."""
    if person.scim_id is None:
        person.scim_id = uuid.uuid4().hex
    return person.scim_id


def _record(session: Session, person: Person) -> PersonRecord:
    manager = session.get(Person, person.manager_email) if person.manager_email else None
    groups = [
        (g.id, g.display_name)
        for g in session.scalars(select(ScimGroup).order_by(ScimGroup.display_name))
        if person.email in (g.members or [])
    ]
    return PersonRecord(
        id=_scim_id(person),
        email=person.email,
        user_name=person.user_name or person.email,
        resource=person.scim_resource,
        name=person.name,
        active=person.active,
        manager_id=_scim_id(manager) if manager else None,
        manager_email=person.manager_email,
        external_id=person.external_id,
        groups=groups,
    )


def _visible(session: Session) -> Any:
    # A person deleted through SCIM (inactive, their id taken back) is gone from it.
    return select(Person).where((Person.scim_id.is_not(None)) | Person.active.is_(True))


def _person_by_id(session: Session, person_id: str) -> Person:
    person = session.scalar(select(Person).where(Person.scim_id == person_id))
    if person is None:
        raise NotFound(f"id: no such user {person_id}")
    return person


def list_people(
    session: Session, *, user_name: str | None, start: int, count: int
) -> tuple[int, list[PersonRecord]]:
    """(total, one page) of people, by email; `user_name` narrows to that email."""
    query = _visible(session)
    if user_name is not None:
        wanted = user_name.strip().lower()
        query = query.where((func.lower(Person.user_name) == wanted) | (Person.email == wanted))
    people = list(session.scalars(query.order_by(Person.email)))
    page = people[start - 1 : start - 1 + count]
    return len(people), [_record(session, p) for p in page]


def get_person(session: Session, person_id: str) -> PersonRecord:
    return _record(session, _person_by_id(session, person_id))


def _checked(
    session: Session, email: str, name: str | None, manager: str | None, myself: str
) -> tuple[str, str | None]:
    if not name or len(name) > MAX_NAME or _CONTROL.search(name):
        raise Invalid(f"name: required, one line, at most {MAX_NAME} characters")
    manager_email = None
    if manager:
        found = session.scalar(select(Person).where(Person.scim_id == manager))
        if found is None and EMAIL_RE.match(manager):
            found = session.get(Person, manager.strip().lower())
        if found is None:
            raise Invalid(f"manager: no such user {manager}")
        manager_email = found.email
        boss: str | None = manager_email
        seen = {myself}
        while boss is not None:
            if boss in seen:
                raise Invalid(f"manager: the management chain of {myself} loops back")
            seen.add(boss)
            boss = session.scalar(select(Person.manager_email).where(Person.email == boss))
    return name, manager_email


def email_of(user_name: str, emails: list[str]) -> str:
    """The directory's email for a SCIM user: its userName if that is an email address,
    else its first email address (the primary first)."""
    for candidate in (user_name, *emails):
        if candidate and EMAIL_RE.match(candidate.strip()):
            return candidate.strip().lower()
    raise Invalid(f"userName: {user_name!r} is not an email address, and no emails are given")


def create_person(
    session: Session,
    *,
    user_name: str,
    email: str,
    name: str | None,
    manager: str | None,
    active: bool,
    external_id: str | None,
    resource: dict[str, Any] | None = None,
) -> PersonRecord:
    if session.get(Person, email) is not None:
        raise Conflict(f"userName: {email} is already in the directory")
    name, manager_email = _checked(session, email, name or email, manager, email)
    person = Person(
        email=email,
        name=name,
        manager_email=manager_email,
        roles="",
        active=active,
        external_id=external_id,
        scim_id=uuid.uuid4().hex,
        user_name=None if user_name.strip().lower() == email else user_name.strip(),
        scim_resource=resource,
    )
    session.add(person)
    session.flush()
    return _record(session, person)


def update_person(
    session: Session,
    person_id: str,
    *,
    user_name: str,
    name: str | None,
    manager: str | None,
    external_id: str | None,
    resource: dict[str, Any] | None = None,
) -> tuple[PersonRecord, bool]:
    """Replace userName, name, manager and external id; (the record, whether they are
    active). The email is the directory's key: a userName naming another is refused."""
    person = _person_by_id(session, person_id)
    user_name = user_name.strip()
    if not user_name:
        raise Invalid("userName: required")
    if EMAIL_RE.match(user_name) and user_name.lower() != person.email:
        raise Invalid(f"userName: the email cannot change ({person.email}); provision a new user")
    person.user_name = None if user_name.lower() == person.email else user_name
    name, manager_email = _checked(
        session, person.email, name or person.name, manager, person.email
    )
    person.name, person.manager_email, person.external_id = name, manager_email, external_id
    person.scim_resource = resource
    session.flush()
    return _record(session, person), person.active


async def set_active(svc: Services, person_id: str, active: bool) -> None:
    """Reactivate, or deactivate with the leaver's work moved on (`app.service.leavers`)."""
    email = await svc.run(lambda s: _person_by_id(s, person_id).email)
    if active:

        def back(session: Session) -> None:
            person = _person_by_id(session, person_id)
            person.active, person.deactivated_at = True, None

        await svc.run(back)
    else:
        await leavers.deactivate(svc, email=email, reason="deactivated by SCIM")


async def delete_person(svc: Services, person_id: str) -> None:
    """Deactivate (their work moves on) and forget their SCIM id: gone from SCIM, kept in
    the directory for the audit trail."""
    email = await svc.run(lambda s: _person_by_id(s, person_id).email)
    await leavers.deactivate(svc, email=email, reason="deleted by SCIM")

    def forget(session: Session) -> None:
        person = session.get(Person, email)
        assert person is not None
        person.scim_id = None
        for group in session.scalars(select(ScimGroup)):
            if email in (group.members or []):
                group.members = [m for m in group.members if m != email]
        _recompute_roles(session, {email})

    await svc.run(forget)


# ---- groups ------------------------------------------------------------------------------


def _group_record(session: Session, group: ScimGroup) -> GroupRecord:
    members = []
    for email in group.members or []:
        person = session.get(Person, email)
        if person is not None and person.scim_id is not None:
            members.append((person.scim_id, email))
    return GroupRecord(group.id, group.display_name, group.external_id, members, group.resource)


def _group(session: Session, group_id: str) -> ScimGroup:
    group = session.get(ScimGroup, group_id)
    if group is None:
        raise NotFound(f"id: no such group {group_id}")
    return group


def list_groups(
    session: Session, *, display_name: str | None, start: int, count: int
) -> tuple[int, list[GroupRecord]]:
    query = select(ScimGroup).order_by(ScimGroup.display_name)
    if display_name is not None:
        query = query.where(ScimGroup.display_name == display_name)
    groups = list(session.scalars(query))
    page = groups[start - 1 : start - 1 + count]
    return len(groups), [_group_record(session, g) for g in page]


def get_group(session: Session, group_id: str) -> GroupRecord:
    return _group_record(session, _group(session, group_id))


def _member_emails(session: Session, member_ids: list[str]) -> list[str]:
    emails = []
    for member_id in member_ids:
        person = session.scalar(select(Person).where(Person.scim_id == member_id))
        if person is None:
            raise Invalid(f"members: no such user {member_id}")
        if person.email not in emails:
            emails.append(person.email)
    return emails


def _recompute_roles(session: Session, emails: set[str]) -> None:
    """Each of `emails`' roles: the role-named groups they are in."""
    groups = list(session.scalars(select(ScimGroup)))
    for email in emails:
        person = session.get(Person, email)
        if person is None:
            continue
        roles = [g.display_name for g in groups if g.display_name in ROLES and email in g.members]
        person.roles = ";".join(r for r in ROLES if r in roles)


def save_group(
    session: Session,
    group_id: str | None,
    *,
    display_name: str,
    member_ids: list[str],
    external_id: str | None,
    resource: dict[str, Any] | None = None,
) -> GroupRecord:
    """Create (`group_id` None) or replace a group; its members' roles follow."""
    name = (display_name or "").strip()
    if not name or len(name) > 200 or _CONTROL.search(name):
        raise Invalid("displayName: required, one line, at most 200 characters")
    clash = session.scalar(select(ScimGroup).where(ScimGroup.display_name == name))
    if clash is not None and clash.id != group_id:
        raise Conflict(f"displayName: a group {name!r} already exists")
    members = _member_emails(session, member_ids)
    if group_id is None:
        group = ScimGroup(id=uuid.uuid4().hex, display_name=name, members=[])
        session.add(group)
    else:
        group = _group(session, group_id)
    touched = set(group.members or []) | set(members)
    group.display_name, group.members, group.external_id = name, members, external_id
    group.resource = resource
    session.flush()
    _recompute_roles(session, touched)
    return _group_record(session, group)


def delete_group(session: Session, group_id: str) -> None:
    group = _group(session, group_id)
    touched = set(group.members or [])
    session.delete(group)
    session.flush()
    _recompute_roles(session, touched)
