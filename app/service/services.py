"""Wires the real adapters (database, Temporal, policy) into one `Services`.

The service functions receive a `Services` and never build their own
dependencies, so tests hand them a database and a time-skipping Temporal.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from app.db import engine_for, session_factory
from app.policy import Policy, load_policy
from app.settings import Settings
from app.temporal import connect
from app.throttle import AuthThrottle

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    sessions: sessionmaker[Session]
    client: Client
    policy: Policy
    engine: Engine | None = None  # disposed by close(); None when the caller owns it
    # Failed sign-ins, per process (app.throttle).
    throttle: AuthThrottle = field(default_factory=AuthThrottle)

    async def run(self, work: Callable[[Session], T]) -> T:
        """`work` in one transaction, on a thread: SQLAlchemy blocks, the event loop must not."""

        def in_transaction() -> T:
            with self.sessions.begin() as session:
                return work(session)

        return await asyncio.to_thread(in_transaction)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


async def bootstrap(settings: Settings) -> Services:
    """Everything the service layer needs. PolicyError for a malformed policy file.

    The Temporal client connects lazily: a web process starts, and answers 503 on
    /healthz, while the cluster is still coming up.
    """
    policy = load_policy(settings.policy_file)
    engine = engine_for(settings)
    try:
        client = await connect(settings, lazy=True)
    except BaseException:
        engine.dispose()
        raise
    return Services(settings, session_factory(engine), client, policy, engine)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Services]:
    """`bootstrap`, then `close` on the way out (the web app's lifespan, the CLI)."""
    services = await bootstrap(settings)
    try:
        yield services
    finally:
        services.close()
