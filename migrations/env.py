"""Alembic environment: runs on the connection app.db passes in, or on the configured URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from models import Base

config = context.config
target_metadata = Base.metadata


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
    # Imported here: app.db imports this package, and the CLI-less path needs only this.
    from app.db import make_engine

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
