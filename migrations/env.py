"""Alembic environment: runs on the connection app.platform.db passes in, or on the
configured URL."""

from __future__ import annotations

import os
import warnings
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SAWarning

from models import Base

config = context.config
target_metadata = Base.metadata

# The party indexes (migration 0002) and PostgreSQL's search index (0003) are on
# expressions, which SQLite's reflection skips and PostgreSQL's rewrites: `alembic
# check` leaves them out rather than misreport them.
EXPRESSION_INDEXES = frozenset(
    {"ix_cases_party_caseworker", "ix_cases_party_investigator"}
    | {"ix_cases_party_perpetrator", "ix_cases_party_subject", "ix_cases_search_trgm"}
)
warnings.filterwarnings(
    "ignore",
    "Skipped unsupported reflection of expression-based index ix_cases_(party_|search_trgm)",
    SAWarning,
)
warnings.filterwarnings(
    "ignore",
    "autogenerate skipping .*expression-based index 'ix_cases_(party_|search_trgm)",
    UserWarning,
)


# SQLite's search index (migration 0003): an FTS5 virtual table and the shadow tables
# FTS5 keeps its index in, none of which the models describe.
SEARCH_TABLES = "cases_search"


def _include_object(obj: Any, name: str | None, type_: str, *_: Any) -> bool:
    if type_ == "table":
        return not (name or "").startswith(SEARCH_TABLES)
    if type_ != "index":
        return True
    return name not in EXPRESSION_INDEXES


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("CASEWORK_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or CASEWORK_DATABASE_URL")
    return url


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        # Strict `alembic check`: a changed column type is a difference too.
        compare_type=True,
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=_url().startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    # Imported here: app.platform.db imports this package, and the CLI-less path needs only this.
    from app.platform.db import make_engine

    engine = make_engine(_url())
    try:
        with engine.connect() as own:
            _configure_and_run(own)
            own.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
