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
from datetime import UTC, datetime

import hypothesis
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from app.platform.db import make_engine, migrate, session_factory
from tests import today as todays

# Temporal servers, the SMTP sink and the worker.
pytest_plugins = ["tests.fixtures_temporal"]

# Property tests: a bounded number of examples, the same ones every run (a failure is a
# bug to fix, not a draw); `HYPOTHESIS_PROFILE=explore` looks further, at random.
hypothesis.settings.register_profile("casework", max_examples=100, derandomize=True)
hypothesis.settings.register_profile("explore", max_examples=2000)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "casework"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "todays(*names): run under each named day of tests/today.py, on purpose"
    )
    config.addinivalue_line(
        "markers", "real_clock: starts processes of its own, which run on the machine's clock"
    )


def pytest_report_header(config: pytest.Config) -> str:
    value = os.environ.get(todays.ENV_VAR, "").strip()
    if not value:
        return f"today: the machine's clock ({todays.ENV_VAR} unset)"
    return f"today: {value}, {todays.chosen(value):%a %d %b %Y %H:%M} UTC ({todays.ENV_VAR})"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("todays")
    if marker is not None:
        if "today" not in metafunc.fixturenames:
            metafunc.fixturenames.append("today")
        metafunc.parametrize("today", marker.args, indirect=True, ids=list(marker.args))


@pytest.fixture(scope="session")
def session_travel() -> Iterator[todays.Travel | None]:
    """With CASEWORK_TEST_TODAY set, the whole session lives on that day."""
    target = todays.from_environment()
    if target is None:
        yield None
        return
    travel = todays.Travel(target)
    travel.start()
    try:
        yield travel
    finally:
        travel.stop()


@pytest.fixture(autouse=True)
def today(
    request: pytest.FixtureRequest, session_travel: todays.Travel | None
) -> Iterator[datetime]:
    """The day the test runs on: a named day it asked for (`todays` marker), the session's
    (CASEWORK_TEST_TODAY), or the machine's. Time-skipping servers skip to it."""
    name = getattr(request, "param", None)
    if request.node.get_closest_marker("real_clock") is not None:
        if session_travel is not None:
            session_travel.stop()
        try:
            yield datetime.now(UTC)
        finally:
            if session_travel is not None:
                session_travel.start()
        return
    if name is None:
        yield datetime.now(UTC)
        return
    travel = todays.Travel(todays.chosen(name))
    travel.start()
    try:
        yield datetime.now(UTC)
    finally:
        travel.stop()


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
