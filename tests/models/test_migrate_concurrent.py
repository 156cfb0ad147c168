"""`casework migrate` from several processes at once, and the pool a serving process gets.

Deployments start workers and web servers together, and each may run `casework migrate`
first: on a fresh PostgreSQL database (an advisory lock) and a fresh SQLite file (the
write lock, waited for), one process migrates and the others find the schema at head.
The test holds that lock while the processes start, so they all meet at it at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import QueuePool, make_url, text

from app.platform.db import _MIGRATION_LOCK_KEY, check_migrations, engine_for, make_engine
from app.platform.settings import Settings, SettingsError

REPO = Path(__file__).resolve().parents[2]
PROCESSES = 4


@contextmanager
def migration_lock_held(url: str) -> Iterator[None]:
    """Hold the lock `casework migrate` takes, as a slow migration in another process would."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
                yield
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield
                conn.exec_driver_sql("ROLLBACK")
    finally:
        engine.dispose()


def waiting_for_the_lock(url: str, procs: list[subprocess.Popen[str]]) -> bool:
    """Whether every process has got as far as the lock (and no further)."""
    if make_url(url).get_backend_name() == "postgresql":
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                waiting = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    )
                ).scalar()
        finally:
            engine.dispose()
        return waiting == len(procs)
    # SQLite: each has the database file open (it then waits, up to minutes, for the lock).
    database = str(make_url(url).database)
    return all(_has_open(p.pid, database) for p in procs)


def _has_open(pid: int, path: str) -> bool:
    try:
        return any(os.readlink(fd) == path for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def test_several_casework_migrate_at_once_on_a_fresh_database(
    empty_db_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEWORK_")}
    env.update(CASEWORK_DATABASE_URL=empty_db_url, CASEWORK_DATA_DIR=str(tmp_path))
    with migration_lock_held(empty_db_url):
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "app.cli.main", "migrate"],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(PROCESSES)
        ]
        try:
            deadline = time.monotonic() + 60
            while not waiting_for_the_lock(empty_db_url, procs):
                finished = [p for p in procs if p.poll() is not None]
                assert not finished, f"migrated without the lock: {finished[0].communicate()}"
                assert time.monotonic() < deadline, "the processes never reached the lock"
                time.sleep(0.1)
            assert all(p.poll() is None for p in procs)
        except BaseException:
            for p in procs:
                p.kill()
            raise
    # Released: all of them go at once; one migrates, the others find the schema at head.
    results = [(p.wait(120), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0] * PROCESSES, [err for _, _, err in results]
    assert all(out.startswith("migrated ") for _, out, _ in results)
    check_migrations(empty_db_url)  # the schema is exactly the models'
    engine = make_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert len(versions) == 1  # one head, written once


def _settings(tmp_path: Path, db_url: str, **env: str) -> Settings:
    return Settings.from_env(
        {"CASEWORK_DATA_DIR": str(tmp_path), "CASEWORK_DATABASE_URL": db_url, **env}
    )


def test_a_serving_process_pools_postgresql_as_its_settings_say(
    tmp_path: Path, db_url: str
) -> None:
    settings = _settings(
        tmp_path,
        db_url,
        CASEWORK_DB_POOL_SIZE="2",
        CASEWORK_DB_MAX_OVERFLOW="1",
        CASEWORK_DB_POOL_TIMEOUT="7",
    )
    engine = engine_for(settings)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        pool = engine.pool
        if engine.dialect.name == "postgresql":
            assert isinstance(pool, QueuePool)
            assert (pool.size(), pool._max_overflow, pool._timeout) == (2, 1, 7.0)
            assert pool._pre_ping
        else:  # SQLite keeps SQLAlchemy's own pooling: one file, no server connections
            assert engine.dialect.name == "sqlite"
    finally:
        engine.dispose()


def test_pool_defaults_and_refusals(tmp_path: Path) -> None:
    defaults = _settings(tmp_path, "postgresql+psycopg://casework@db/casework")
    assert (defaults.db_pool_size, defaults.db_max_overflow, defaults.db_pool_timeout) == (
        5,
        10,
        30.0,
    )
    for name, value in (
        ("DB_POOL_SIZE", "0"),
        ("DB_MAX_OVERFLOW", "-1"),
        ("DB_POOL_TIMEOUT", "soon"),
    ):
        with pytest.raises(SettingsError, match=f"CASEWORK_{name}: must be a whole number"):
            _settings(tmp_path, "sqlite:///x.db", **{f"CASEWORK_{name}": value})
