"""One scenario's stack, all real and all its own: the dev server (state in a SQLite
file), `casework worker` processes, a migrated records database (a SQLite file, or a
PostgreSQL database made for the run, optionally behind a proxy that can cut it), an
SMTP relay that counts Message-IDs, and the service layer the API calls.

Everything lives in a temporary directory and on free ports, and is stopped in a
`finally` however the scenario ends.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psycopg
from psycopg import sql
from sqlalchemy import Engine, make_url

from app.platform.db import make_engine, migrate, session_factory
from app.platform.settings import DEFAULT_POLICY_FILE, Settings
from app.runtime.bootstrap import bootstrap
from app.runtime.devserver import wait_for_temporal
from app.service.people import import_people
from app.service.services import Services
from chaos.mail import MailCapture
from chaos.processes import KillableDevServer, WorkerProcess, free_port
from chaos.proxy import TcpProxy

T = TypeVar("T")

TASK_QUEUE = "chaos"
POSTGRES_ADMIN = os.environ.get(
    "CASEWORK_CHAOS_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MANAGERS = 10
EMPLOYEES = 50
OFFICERS = 5


def people_csv() -> str:
    """A director, managers who report to her, their employees, and the SAC team."""
    rows = ["email,name,manager_email,roles", "director@dwp.gov.uk,Director,,"]
    rows.append("saclead@dwp.gov.uk,SAC Lead,director@dwp.gov.uk,sac;sac_lead")
    rows += [f"officer{o}@dwp.gov.uk,Officer {o},saclead@dwp.gov.uk,sac" for o in range(OFFICERS)]
    rows += [f"manager{m}@dwp.gov.uk,Manager {m},director@dwp.gov.uk," for m in range(MANAGERS)]
    rows += [
        f"employee{e}@dwp.gov.uk,Employee {e},manager{e % MANAGERS}@dwp.gov.uk,"
        for e in range(EMPLOYEES)
    ]
    return "\n".join(rows) + "\n"


def policy_text(endorsement: dict[str, str] | None = None) -> str:
    """The shipped policy file, with `ipa_approval.manager_endorsement` replaced if given
    (ISO durations such as PT30S, so timers fall due during the run)."""
    text = DEFAULT_POLICY_FILE.read_text()
    if endorsement is None:
        return text
    lines = "".join(f'{key} = "{value}"\n' for key, value in endorsement.items())
    section = re.compile(r"(\[sla\.ipa_approval\.manager_endorsement\]\n(?:#.*\n)*)(?:\w.*\n)*")
    replaced, count = section.subn(lambda m: m.group(1) + lines, text, count=1)
    if count != 1:
        raise RuntimeError("the shipped policy file has no manager_endorsement section")
    return replaced


@dataclass
class Database:
    url: str  # what the service layer uses
    worker_url: str  # what the workers use: through the proxy, if there is one
    proxy: TcpProxy | None = None
    sqlite_file: Path | None = None


@contextmanager
def records_database(kind: str, workdir: Path, *, proxied: bool) -> Iterator[Database]:
    if kind == "sqlite":
        path = workdir / "casework.db"
        url = f"sqlite:///{path}"
        migrate(url)
        yield Database(url, url, sqlite_file=path)
        return
    name = f"casework_chaos_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_url = make_url(POSTGRES_ADMIN)
    admin = admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    proxy = None
    try:
        own = admin_url.set(drivername="postgresql+psycopg", database=name)
        url = own.render_as_string(hide_password=False)
        migrate(url)
        worker_url = url
        if proxied:
            proxy = TcpProxy(free_port(), own.host or "127.0.0.1", own.port or 5432)
            proxy.start()
            via = own.set(host="127.0.0.1", port=proxy.port)
            worker_url = via.render_as_string(hide_password=False)
        yield Database(url, worker_url, proxy=proxy)
    finally:
        if proxy is not None:
            proxy.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@dataclass
class Stack:
    workdir: Path
    server: KillableDevServer
    mail: MailCapture
    database: Database
    workers: list[WorkerProcess]
    svc: Services
    env: dict[str, str]
    engine: Engine = field(repr=False)
    keep: bool = False  # keep the work directory (logs): something was lost or doubled

    @property
    def settings(self) -> Settings:
        return self.svc.settings

    async def restart_server(self) -> None:
        self.server.start()
        await wait_for_temporal(self.settings, self.server)

    def restart_dead_workers(self) -> int:
        dead = [w for w in self.workers if not w.running]
        for worker in dead:
            worker.start()
        return len(dead)


def _env(
    workdir: Path, server: KillableDevServer, mail_port: int, db_url: str, policy: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEWORK_")}
    env.update(
        CASEWORK_DATA_DIR=str(workdir),
        CASEWORK_DATABASE_URL=db_url,
        CASEWORK_TEMPORAL_ADDRESS=server.address,
        CASEWORK_SMTP_HOST="127.0.0.1",
        CASEWORK_SMTP_PORT=str(mail_port),
        CASEWORK_POLICY_FILE=str(policy),
        CASEWORK_TASK_QUEUE=TASK_QUEUE,
        # Payloads encrypted as in production (app/platform/codec.py), with a key of the run's own.
        CASEWORK_PAYLOAD_KEYS=f"chaos:{base64.b64encode(secrets.token_bytes(32)).decode()}",
    )
    return env


@asynccontextmanager
async def stack(
    name: str,
    *,
    database: str = "sqlite",
    proxied: bool = False,
    workers: int = 2,
    endorsement: dict[str, str] | None = None,
) -> AsyncIterator[Stack]:
    """The whole stack for one scenario; torn down on the way out, failure or not.

    The work directory (logs of the server and workers) is kept if the scenario fails.
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"casework-chaos-{name}-"))
    server = KillableDevServer(workdir / "temporal")
    mail = MailCapture(free_port())
    started: list[WorkerProcess] = []
    # Whose connections the relay looks up: the workers' processes of the moment.
    mail.senders = lambda: [p.pid for w in started if (p := w.process) is not None]
    ok = False
    try:
        policy = workdir / "policy.toml"
        policy.write_text(policy_text(endorsement))
        with records_database(database, workdir, proxied=proxied) as db:
            engine = make_engine(db.url)
            try:
                with session_factory(engine).begin() as session:
                    import_people(session, people_csv())
                mail.start()
                server.start()
                env = _env(workdir, server, mail.port, db.worker_url, policy)
                settings = Settings.from_env({**env, "CASEWORK_DATABASE_URL": db.url})
                await wait_for_temporal(settings, server)
                for n in range(workers):
                    worker = WorkerProcess(f"worker-{n}", env, workdir / f"worker-{n}.log")
                    started.append(worker)
                    worker.start()
                svc = await bootstrap(settings)
                try:
                    made = Stack(workdir, server, mail, db, started, svc, env, engine)
                    yield made
                    ok = not made.keep
                finally:
                    svc.close()
                    for worker in started:
                        worker.stop()
                    server.stop()
            finally:
                engine.dispose()
    finally:
        for worker in started:
            worker.stop()
        server.stop()
        mail.stop()
        if ok and not os.environ.get("CHAOS_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"  (logs kept in {workdir})", file=sys.stderr)


async def gather_limited(limit: int, coros: Iterable[Awaitable[T]]) -> list[T]:
    """Await them all, at most `limit` at a time (that many people at their desks)."""
    semaphore = asyncio.Semaphore(limit)

    async def one(coro: Awaitable[T]) -> T:
        async with semaphore:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))
