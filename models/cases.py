"""The read model: one row per case, and its append-only, hash-chained event log.

The workflow is the source of truth for a case's state; these rows serve lists,
search and dashboards, and the event log is the audit trail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, QueryableAttribute, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from models.base import Base, Timestamp

# Filtered on by lists, after `status` or `opened_at`; `opened_at`, `id` end it (the order).
LIST_COLUMNS = (
    "type",
    "team",
    "overdue",
    "assignee",
    "owner",
    "requester",
    "stage",
    "opened_at",
    "id",
)
# The parties lists look up by email (viewers, conflicted parties: workflows/*_types.py);
# each has an index on `party_email(parties, name)` (migration 0002).
INDEXED_PARTIES = ("caseworker", "investigator", "perpetrator", "subject", "requester_manager")


class party_email(FunctionElement[str]):
    """The email `parties` names as `party`, written exactly as the migration's indexes
    are, so both databases use them: SQLite `json_extract(parties, '$."subject"')`,
    PostgreSQL `parties ->> 'subject'`. The name is a literal, not a bound parameter:
    an expression index matches only the same literal expression."""

    type = String()
    inherit_cache = True
    # The party is part of the SQL, so part of the statement cache's key too.
    _traverse_internals = [
        *FunctionElement._traverse_internals,
        ("party", InternalTraversal.dp_string),
    ]

    def __init__(self, parties: ColumnElement[Any] | QueryableAttribute[Any], party: str) -> None:
        if not party.isidentifier():
            raise ValueError(f"party {party!r} is not a plain name")
        self.party = party
        super().__init__(parties)


@compiles(party_email, "sqlite")
def _party_email_sqlite(element: party_email, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$.\"{element.party}\"')"


@compiles(party_email)
def _party_email_postgresql(element: party_email, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} ->> '{element.party}')"


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10))
    stage: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str | None] = mapped_column(String(40))
    requester: Mapped[str] = mapped_column(String(320), index=True)
    assignee: Mapped[str | None] = mapped_column(String(320), index=True)
    team: Mapped[str | None] = mapped_column(String(40))
    owner: Mapped[str | None] = mapped_column(String(320), index=True)
    due_at: Mapped[datetime | None]
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]
    closed_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    links: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    parties: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    policy_version: Mapped[str] = mapped_column(String(64), default="")
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    # Lower-cased words of id, details and parties, for `q=` search.
    search_text: Mapped[str] = mapped_column(Text, default="")
    # Bumped by every write, so an older snapshot never overwrites a newer one.
    version: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("ix_cases_status_due_at", "status", "due_at"),
        Index("ix_cases_type_status_stage", "type", "status", "stage"),
        # Every column a list's filters and visibility read (app/service/queries.py), so that a
        # list's `total` and its page are answered from an index alone, never from the
        # wide rows (details, search text): by status first (queues, overdue), or newest
        # first (the order of a page, and search).
        Index("ix_cases_list_by_status", "status", *LIST_COLUMNS),
        Index("ix_cases_list_by_opened_at", "opened_at", "id", "status", *LIST_COLUMNS[:-2]),
    )


for _party in INDEXED_PARTIES:
    Index(f"ix_cases_party_{_party}", party_email(Case.__table__.c.parties, _party))
# `q=` search has an index of its own on each database (migration 0003, used by
# models.search.text_search): SQLite's FTS5 table `cases_search`, PostgreSQL's trigram
# index `ix_cases_search_trgm` on an expression; `alembic check` leaves both out.


class CaseCounter(Base):
    """Allocates case numbers: IPA-2026-000001 and so on."""

    __tablename__ = "case_counters"

    prefix: Mapped[str] = mapped_column(String(20), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class CaseEvent(Base):
    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(40), ForeignKey("cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    # Who wrote it decides the key (workflow event, mail, refused attempt): a retry
    # carries the same key and so appends nothing.
    key: Mapped[str] = mapped_column(String(80))
    at: Mapped[Timestamp]
    actor: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(40))
    stage: Mapped[str | None] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("case_id", "seq", name="uq_case_events_case_id_seq"),
        UniqueConstraint("case_id", "key", name="uq_case_events_case_id_key"),
    )


class CaseEscalation(Base):
    """Who an open case's escalation has reached ("Escalated to me"): a row per person
    told, written with the `escalated` event and cleared when the escalation ends (the
    stage moves on, or the case closes). Kept by `domain.records.upsert_case`."""

    __tablename__ = "case_escalations"

    case_id: Mapped[str] = mapped_column(String(40), ForeignKey("cases.id"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True, index=True)
    level: Mapped[int] = mapped_column(Integer)
    at: Mapped[Timestamp]


class SentMail(Base):
    """One row per Message-ID sent: the guard that stops a retry mailing twice."""

    __tablename__ = "sent_mail"

    message_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    recipients: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[Timestamp]
