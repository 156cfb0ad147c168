"""Database engines, sessions and schema migrations for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from app.platform.settings import Settings

# Any fixed 64-bit number: every process migrating the same database takes this lock.
_MIGRATION_LOCK_KEY = 0x0CA5E_0001

# How long `casework migrate` on SQLite waits for another process's migration.
_MIGRATION_WAIT_MS = 300_000

# Set on every new SQLite connection, after its busy timeout (`make_engine`), so that
# switching to WAL waits for a concurrent writer instead of failing.
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


def _normalise(url: str | URL) -> URL:
    parsed = make_url(url)
    # Plain `postgresql://` means psycopg2 to SQLAlchemy, which is not installed.
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_pragmas(busy_ms: int) -> Callable[[Any, Any], None]:
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    return set_pragmas


def make_engine(url: str | URL, *, sqlite_busy_ms: int = 5000, **kwargs: Any) -> Engine:
    """An engine for `url`; extra keyword arguments go to `create_engine`. On SQLite, a
    connection waits `sqlite_busy_ms` for another process's write lock, from its very
    first statement (switching to WAL needs the lock too)."""
    parsed = _normalise(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas(sqlite_busy_ms))
        return engine
    if parsed.get_backend_name() == "postgresql":
        # pre_ping: a connection dropped by a restart or a proxy is replaced, not raised.
        # recycle: closed before a server's or a pooler's idle timeout closes it for us.
        options: dict[str, Any] = {
            "pool_pre_ping": True,
            "pool_size": DEFAULT_POOL.size,
            "max_overflow": DEFAULT_POOL.max_overflow,
            "pool_timeout": DEFAULT_POOL.timeout,
            "pool_recycle": 1800,
        }
        options.update(kwargs)
        return create_engine(parsed, **options)
    return create_engine(parsed, **kwargs)


@dataclass(frozen=True)
class PoolSizes:
    """A PostgreSQL process's connection pool; SQLite keeps SQLAlchemy's own pooling."""

    size: int = 5  # kept open
    max_overflow: int = 10  # opened beyond `size` under load, closed when returned
    timeout: float = 30.0  # seconds to wait for a free connection before failing


DEFAULT_POOL = PoolSizes()


def engine_for(settings: Settings) -> Engine:
    """The engine of a serving process, pooled as CASEWORK_DB_POOL_* say.

    Each worker and web process holds up to size + max_overflow connections: the
    sum over all processes must stay under PostgreSQL's max_connections.
    """
    url = _normalise(settings.database_url)
    if url.get_backend_name() != "postgresql":
        return make_engine(url)
    return make_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # Objects stay readable after commit: activities and services return them.
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | URL, connection: Connection | None = None) -> Config:
    """An Alembic config built in code, so migrations run from any cwd or an installed wheel."""
    cfg = Config()
    # The migrations are found as Alembic finds them, by location (`package:dir`), not
    # imported: their env.py imports this module (docs/ARCHITECTURE.md).
    cfg.set_main_option("script_location", "migrations:")
    # Config values go through ConfigParser interpolation: a `%` in a password must be doubled.
    rendered = _normalise(url).render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    if connection is not None:
        # migrations/env.py runs on this connection (and inside its transaction) if given.
        cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def _locked_config(url: str | URL) -> Iterator[Config]:
    """A config bound to one transaction that holds a migration lock.

    A second process waits for the lock, then finds the schema already at head.
    """
    # Another process's migration may hold the write lock for longer than the usual busy
    # timeout, from this process's first statement on (seen under load: four processes
    # migrating one SQLite file at once): wait for it, its schema is then at head.
    engine = make_engine(url, sqlite_busy_ms=_MIGRATION_WAIT_MS)
    try:
        with engine.begin() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if connection.dialect.name == "postgresql":
                # Transaction-scoped: released by the commit that also commits the migration.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            elif sqlite:
                # SQLite's own recipe for schema changes: foreign keys off (possible only
                # outside a transaction) so batch mode may re-create a referenced table,
                # and a check before commit. The connection dies with this engine.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                # pysqlite would begin only at the first INSERT, running DDL outside any
                # transaction: take the write lock now, which makes the migration atomic.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield alembic_config(url, connection)
            if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
                raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
    finally:
        engine.dispose()


def _run(url: str | URL, action: Callable[[Config], None]) -> None:
    with _locked_config(url) as cfg:
        action(cfg)


def migrate(url: str | URL, revision: str = "head") -> None:
    """Apply migrations up to `revision`; safe to run from several processes at once."""
    _run(url, lambda cfg: command.upgrade(cfg, revision))


def downgrade(url: str | URL, revision: str = "base") -> None:
    _run(url, lambda cfg: command.downgrade(cfg, revision))


def check_migrations(url: str | URL) -> None:
    """Raise alembic's AutogenerateDiffsDetected if the models and the migrations disagree."""
    _run(url, command.check)
