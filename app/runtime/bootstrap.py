"""Wires the real adapters (database, Temporal, policy) into one `Services`.

The one place a process builds them from its settings: the web app's lifespan, the
CLI's case commands, the benchmarks and the fault-injection rig.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.platform.db import engine_for, session_factory
from app.platform.settings import Settings
from app.platform.temporal import connect
from app.service.services import Services
from domain.policy import load_policy


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
