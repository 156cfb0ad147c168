"""Indexes that answer case lists from the index alone at 100,000 cases.

Two covering indexes over every column a list's filters and visibility read (by
status, and newest first), an index per party looked up by email (the confidential
types' viewers and conflicted parties), and on PostgreSQL a trigram index for `q=`
search. The expressions are written exactly as `models.cases.party_email` compiles
them, or the databases would not use them. `bench/read_model.py` measures the effect.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in models.cases (copied: a migration never changes when the models do).
LIST_COLUMNS = ["type", "team", "overdue", "assignee", "owner", "requester", "stage"]
PARTIES = ("caseworker", "investigator", "perpetrator", "subject")


def _party_email(dialect: str, party: str) -> str:
    if dialect == "sqlite":
        return f"json_extract(parties, '$.\"{party}\"')"
    return f"(parties ->> '{party}')"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_index(
        "ix_cases_list_by_status", "cases", ["status", *LIST_COLUMNS, "opened_at", "id"]
    )
    # Starts with opened_at, so it replaces the index on opened_at alone.
    op.create_index(
        "ix_cases_list_by_opened_at", "cases", ["opened_at", "id", "status", *LIST_COLUMNS]
    )
    op.drop_index("ix_cases_opened_at", table_name="cases")
    for party in PARTIES:
        op.create_index(f"ix_cases_party_{party}", "cases", [sa.text(_party_email(dialect, party))])
    if dialect == "postgresql":
        # `q=` is a substring match (LIKE '%word%'): only a trigram index serves it.
        # pg_trgm is a trusted extension: the database's owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_cases_search_text_trgm ON cases USING gin (search_text gin_trgm_ops)"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP INDEX ix_cases_search_text_trgm")
    for party in PARTIES:
        op.drop_index(f"ix_cases_party_{party}", table_name="cases")
    op.create_index("ix_cases_opened_at", "cases", ["opened_at"])
    op.drop_index("ix_cases_list_by_opened_at", table_name="cases")
    op.drop_index("ix_cases_list_by_status", table_name="cases")
