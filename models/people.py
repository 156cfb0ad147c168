"""The directory: people, their managers and roles, and their API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, true
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Email, Timestamp

# The roles a person may hold (API.md), as the CSV, SCIM's Groups and the provider's group
# claim name them.
ROLES = ("sac", "sac_lead", "sirt", "sirt_lead", "hr", "hr_lead", "auditor", "admin")


class Person(Base):
    __tablename__ = "people"

    email: Mapped[Email] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    manager_email: Mapped[str | None] = mapped_column(
        String(320), ForeignKey("people.email", use_alter=True), index=True
    )
    # `;`-separated role names, as in the CSV: small, and read with the person.
    roles: Mapped[str] = mapped_column(String(200), default="")
    # A leaver (SCIM `active: false`, `casework people deactivate`): kept for the record,
    # never signed in, mailed or escalated to again.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    deactivated_at: Mapped[datetime | None]
    # SCIM: the id Casework gave the person (stable when their email changes) and the
    # identity provider's own id for them.
    scim_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(200))
    # SCIM's userName where the provider's is not the email (a UPN, an employee number).
    user_name: Mapped[str | None] = mapped_column(String(320))
    # The SCIM User as the provider last sent it, answered back with the directory's own
    # fields (id, userName, active, manager, groups) laid over it.
    scim_resource: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    @property
    def role_list(self) -> list[str]:
        return [r for r in self.roles.split(";") if r]


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # sha256 of the token: a stolen database yields no usable token.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[Email] = mapped_column(ForeignKey("people.email"), index=True)
    created_at: Mapped[Timestamp]
    revoked_at: Mapped[datetime | None]


class ScimGroup(Base):
    """A group the identity provider keeps by SCIM. A group named as a role (`sac_lead`)
    gives that role to its members; other groups are kept, and give nothing."""

    __tablename__ = "scim_groups"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(200))
    # The members' emails (the directory's key).
    members: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The SCIM Group as last sent (members and id laid over it when answered).
    resource: Mapped[dict[str, Any] | None] = mapped_column(JSON)
