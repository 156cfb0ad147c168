"""The HTTP side of the metrics (`app.platform.metrics` defines them): `GET /metrics`, and
the latency of each action taken over the API (`casework_action_seconds`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI, Response
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.orm import Session, sessionmaker

from app.platform.metrics import (
    ACTION_SECONDS,
    ACTIONS,
    CONTENT_TYPE,
    TYPE_BY_PREFIX,
    ReadModelCollector,
)
from app.service.errors import ServiceError


@contextmanager
def timing_action(case_id: str, action: str) -> Iterator[None]:
    """Time one action; a refusal is observed under its error code, a fault as `error`."""
    started = time.perf_counter()
    result = "ok"
    try:
        yield
    except ServiceError as e:
        result = e.code
        raise
    except BaseException:
        result = "error"
        raise
    finally:
        ACTION_SECONDS.labels(
            TYPE_BY_PREFIX.get(case_id.partition("-")[0], "unknown"),
            action if action in ACTIONS else "other",  # no new series per typo
            result,
        ).observe(time.perf_counter() - started)


def install_metrics(app: FastAPI) -> None:
    """`GET /metrics` (no token, like /healthz: aggregate counts only, no case data).

    The read model is the one the app's services use, looked up at each scrape.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ACTION_SECONDS)

    def sessions() -> sessionmaker[Session] | None:
        services = getattr(app.state, "services", None)
        return None if services is None else services.sessions

    registry.register(ReadModelCollector(sessions))

    async def metrics() -> Response:
        body = await asyncio.to_thread(generate_latest, registry)  # it queries the database
        return Response(body, media_type=CONTENT_TYPE)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
