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
from app.service.oidc import OidcClient
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
    # The OpenID Connect provider's metadata and keys, once asked for (app.service.oidc).
    _oidc: OidcClient | None = None

    def oidc(self) -> OidcClient | None:
        """The OpenID Connect client, or None when no provider is configured."""
        if self._oidc is None and self.settings.oidc_issuer:
            self._oidc = OidcClient(self.settings)
        return self._oidc

    async def run(self, work: Callable[[Session], T]) -> T:
        """`work` in one transaction, on a thread: SQLAlchemy blocks, the event loop must not."""

        def in_transaction() -> T:
            with self.sessions.begin() as session:
                return work(session)

        return await asyncio.to_thread(in_transaction)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
