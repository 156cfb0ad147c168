"""Who an escalation reached, and an index for the requester's manager.

`case_escalations`: a row per person an open case's escalation reached, for the
managers' "Escalated to me" (`escalated_to=me`); the records activity writes it with
each `escalated` event and clears it when the escalation ends. It starts empty: a
case overdue before this revision is listed from its next escalation on.

`ix_cases_party_requester_manager`: an IPA or policy exception is seen whole by the
requester's manager (need to know); lists look them up by email, as the other parties.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _party_email(dialect: str, party: str) -> str:
    if dialect == "sqlite":
        return f"json_extract(parties, '$.\"{party}\"')"
    return f"(parties ->> '{party}')"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "case_escalations",
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_escalations_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("case_id", "email", name=op.f("pk_case_escalations")),
    )
    op.create_index(op.f("ix_case_escalations_email"), "case_escalations", ["email"], unique=False)
    op.create_index(
        "ix_cases_party_requester_manager",
        "cases",
        [sa.text(_party_email(dialect, "requester_manager"))],
    )


def downgrade() -> None:
    op.drop_index("ix_cases_party_requester_manager", table_name="cases")
    op.drop_index(op.f("ix_case_escalations_email"), table_name="case_escalations")
    op.drop_table("case_escalations")
