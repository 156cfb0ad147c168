"""People who leave, and people kept by SCIM: `active`, `deactivated_at`, `scim_id`,
`external_id` on the directory, and the groups SCIM keeps (`scim_groups`).

A deactivated person stays in the directory (the audit trail names them) but can no
longer sign in, be mailed or be escalated to. `scim_id` is the id SCIM clients address a
person by (stable when the email changes); `external_id` the identity provider's own.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(
            sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch.add_column(sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("scim_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("external_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("user_name", sa.String(320), nullable=True))
        batch.add_column(sa.Column("scim_resource", sa.JSON(), nullable=True))
        batch.create_unique_constraint("uq_people_scim_id", ["scim_id"])
    op.create_table(
        "scim_groups",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("resource", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_scim_groups"),
        sa.UniqueConstraint("display_name", name="uq_scim_groups_display_name"),
    )


def downgrade() -> None:
    op.drop_table("scim_groups")
    with op.batch_alter_table("people") as batch:
        batch.drop_constraint("uq_people_scim_id", type_="unique")
        batch.drop_column("scim_resource")
        batch.drop_column("user_name")
        batch.drop_column("external_id")
        batch.drop_column("scim_id")
        batch.drop_column("deactivated_at")
        batch.drop_column("active")
