"""`Services`: the adapters (database, Temporal client, policy) every service function
receives.

The service functions never build their own dependencies, so tests hand them a
database and a time-skipping Temporal; `app.runtime.bootstrap` builds the real ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from app.platform.settings import Settings
from app.service.throttle import AuthThrottle
from domain.policy import Policy

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    sessions: sessionmaker[Session]
    client: Client
    policy: Policy
    engine: Engine | None = None  # disposed by close(); None when the caller owns it
    # Failed sign-ins, per process (app.service.throttle).
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
