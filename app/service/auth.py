"""API tokens: issued once in the clear, stored only as their sha256.

A stolen database yields no usable token; a person may hold several tokens
(one per script or device) until each is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.service.errors import NotFound
from models import ApiToken, Person


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, email: str) -> str:
    """A new token for the person `email`; the caller commits. NotFound for an unknown person."""
    email = email.strip().lower()
    person = session.get(Person, email)
    if person is None:
        raise NotFound(f"email: no such person {email}")
    if not person.active:
        raise NotFound(f"email: {email} has been deactivated")
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=token_hash(token), email=email, created_at=datetime.now(UTC)))
    session.flush()
    return token


def person_for_token(session: Session, token: str) -> Person | None:
    """The person holding this unrevoked token, or None (also when the person has left)."""
    if not token:
        return None
    return person_for_token_hash(session, token_hash(token))


def person_for_token_hash(session: Session, wanted: str) -> Person | None:
    """`person_for_token` for a token already hashed: a page session keeps only the hash,
    so revoking the token signs its sessions out too."""
    # One statement for the token and its person: every API request pays for this.
    row = session.execute(
        select(ApiToken.token_hash, Person)
        .join(Person, Person.email == ApiToken.email)
        .where(
            ApiToken.token_hash == wanted,
            ApiToken.revoked_at.is_(None),
            Person.active.is_(True),  # a leaver's tokens stop at their next request
        )
    ).first()
    # The lookup is by an index, which is not constant-time; comparing the digests again
    # with compare_digest keeps the final decision free of timing differences.
    if row is None or not hmac.compare_digest(row.token_hash, wanted):
        return None
    person: Person = row.Person
    return person


def revoke_token(session: Session, token: str) -> bool:
    """Revoke one token; whether it was valid. The caller commits."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == token_hash(token), ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(getattr(result, "rowcount", 0))


def revoke_all(session: Session, email: str) -> int:
    """Revoke every token of `email` (someone leaves, or a laptop is lost); how many."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.email == email.strip().lower(), ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return int(getattr(result, "rowcount", 0))
