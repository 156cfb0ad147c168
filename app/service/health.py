"""Whether this process can serve: the database and Temporal both answer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import text

from app.service.services import Services

TIMEOUT = timedelta(seconds=3)


async def _database(svc: Services) -> bool:
    try:
        await asyncio.wait_for(svc.run(lambda s: s.execute(text("SELECT 1"))), TIMEOUT.seconds)
    except Exception:  # any failure means "not ready"; the reason is for the logs, not the probe
        return False
    return True


async def _temporal(svc: Services) -> bool:
    try:
        return await svc.client.service_client.check_health(timeout=TIMEOUT)
    except Exception:
        return False


async def check(svc: Services) -> dict[str, bool]:
    """{"database": ok, "temporal": ok}, asked at the same time."""
    database, temporal = await asyncio.gather(_database(svc), _temporal(svc))
    return {"database": database, "temporal": temporal}
