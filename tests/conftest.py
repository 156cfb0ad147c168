"""Shared fixtures: a fresh, migrated database per test, on SQLite and on PostgreSQL.

PostgreSQL is used when 127.0.0.1:5432 answers (trust auth, database `test`, as user
`postgres` or the current user), or at CASEWORK_TEST_POSTGRES_URL, an admin URL such as
`postgresql://me@db:5432/test`. Each test gets its own database, dropped afterwards.
"""

from __future__ import annotations

import getpass
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, migrate, session_factory

# Temporal servers, the SMTP sink and the worker.
pytest_plugins = ["tests.fixtures_temporal"]


def _postgres_candidates() -> list[str]:
    if url := os.environ.get("CASEWORK_TEST_POSTGRES_URL"):
        return [url]
    users = dict.fromkeys(["postgres", getpass.getuser()])
    return [f"postgresql://{user}@127.0.0.1:5432/test" for user in users]


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A URL that may create databases; skips the test if no PostgreSQL answers."""
    reasons = []
    for url in _postgres_candidates():
        try:
            with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return url
        except psycopg.Error as exc:
            detail = " ".join(str(exc).split())
            reasons.append(f"{make_url(url).render_as_string()}: {detail}")
    pytest.skip("PostgreSQL not reachable (" + "; ".join(reasons) + ")")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of a new, empty database (no tables)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'casework.db'}"
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    name = f"casework_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            # FORCE: a connection a failed test left open must not keep the database.
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """A new database with every migration applied."""
    migrate(empty_db_url)
    return empty_db_url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)
