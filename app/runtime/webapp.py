"""The web app a web server serves: the HTTP API (`app.api`) and the pages (`app.web`)
on one FastAPI app, with `Services` entered for the app's lifetime.

Here, not in either front end, so that the API and the pages never import each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from app.api.docs import install_docs
from app.api.http_errors import install_error_handlers
from app.api.limits import MAX_BODY, BodySizeLimit, evidence_upload_limit
from app.api.metrics import install_metrics
from app.api.routes import router
from app.platform.logs import CaseIdMiddleware
from app.platform.settings import Settings
from app.runtime.bootstrap import running
from app.runtime.headers import SecurityHeaders
from app.service.services import Services
from app.web import install_pages

ServicesFactory = Callable[[], AbstractAsyncContextManager[Services]]


def create_app(services_factory: ServicesFactory, settings: Settings | None = None) -> FastAPI:
    """The API and the pages, with `Services` entered for the app's lifetime (tests pass
    their own). `settings`, if given, are the pages' (else read from the services)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with services_factory() as services:
            app.state.services = services
            yield

    app = FastAPI(
        title="Casework",
        summary="Case management for the Social Media Policy",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # served offline by install_docs, not from a CDN
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimit, limit=MAX_BODY, limit_for=evidence_upload_limit)
    app.add_middleware(CaseIdMiddleware)  # log lines while serving a case carry its id
    install_error_handlers(app)
    app.include_router(router)
    install_metrics(app)
    install_docs(app)
    install_pages(app, settings)  # after the API's error handlers: it keeps them for /api
    app.add_middleware(SecurityHeaders)  # outermost: every answer, errors included
    return app


def web_app(settings: Settings) -> FastAPI:
    """The app `casework web` serves: real adapters, closed on shutdown."""
    return create_app(lambda: running(settings), settings)
