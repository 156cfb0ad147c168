"""Tracing through Temporal's TracingInterceptor: off by default, one trace per case action.

Runs where the `otel` extra is installed (the test extra includes it).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from app import service
from app.platform import tracing
from app.platform.settings import Settings
from app.service.services import Services
from tests.fixtures_temporal import eventually
from worker import build_worker

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

DETAILS = {
    "account_kind": "individual_professional",
    "platform": "LinkedIn",
    "handle": "jo-example",
    "justification": "Recruitment",
    "device": "dwp_managed",
    "contact_email": "jo@example.com",
}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider, make_global=False)
    try:
        yield exporter
    finally:
        tracing.shutdown()


def test_off_unless_an_otlp_endpoint_is_set() -> None:
    assert tracing.interceptors() == []
    assert tracing.setup("web", env={}) is False
    assert tracing.interceptors() == []


def test_without_opentelemetry_installed_it_runs_untraced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As if the extra were not installed: importing the exporter fails.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with caplog.at_level(logging.WARNING, logger="app.platform.tracing"):
        on = tracing.setup("worker", env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert on is False
    assert tracing.interceptors() == []
    assert "pip install 'casework[otel]'" in caplog.text


async def test_a_case_is_one_trace_from_the_request_to_each_activity(
    services: Services,
    settings: Settings,
    engine: Engine,
    temporal_client: Client,
    spans: InMemorySpanExporter,
) -> None:
    traced = Client(**{**temporal_client.config(), "interceptors": tracing.interceptors()})
    queue = f"traced-{uuid.uuid4().hex[:8]}"
    svc = replace(
        services, client=traced, settings=settings.model_copy(update={"task_queue": queue})
    )
    worker = build_worker(traced, settings=svc.settings, engine=engine)
    async with worker:
        actor = await service.actor_for(svc, email="employee@dwp.gov.uk")
        case = await service.open_case(svc, actor=actor, case_type="ipa_approval", details=DETAILS)

        def names() -> set[str]:
            return {span.name for span in spans.get_finished_spans()}

        await eventually(lambda: {"RunActivity:record", "RunActivity:send_mail"} <= names())
    # Its activity threads let go of their connections before the database is dropped.
    await asyncio.to_thread(worker.config()["activity_executor"].shutdown, wait=True)
    finished = spans.get_finished_spans()
    start = next(s for s in finished if s.name.startswith("StartWorkflow:"))
    assert start.attributes is not None
    assert start.attributes["temporalWorkflowID"] == case["id"]
    run_activities = [s for s in finished if s.name.startswith("RunActivity:")]
    assert {s.context.trace_id for s in run_activities} == {start.context.trace_id}
