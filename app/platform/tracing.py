"""OpenTelemetry tracing through Temporal's contrib `TracingInterceptor`: optional.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (the standard OpenTelemetry variable;
OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS and the rest are read by the exporter
itself). Then each process exports its spans over OTLP/HTTP, and a case's trace runs
from the web request that started or updated the workflow, through the workflow, to
each activity, across processes. The packages are an extra (`pip install
'casework[otel]'`): without them Casework runs untraced and says so once.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from temporalio.client import Interceptor

log = logging.getLogger(__name__)
_provider: Any = None  # the TracerProvider spans go to, once tracing is on


def enable(provider: Any, *, make_global: bool = True) -> None:
    """Trace through `provider` (an opentelemetry-sdk TracerProvider) from now on; as
    OpenTelemetry's global provider too, for any other instrumentation in the process."""
    global _provider
    _provider = provider
    if make_global:
        from opentelemetry import trace

        trace.set_tracer_provider(provider)


def setup(service: str, env: dict[str, str] | None = None) -> bool:
    """Turn tracing on if OTEL_EXPORTER_OTLP_ENDPOINT is set; whether it is on."""
    env = dict(os.environ) if env is None else env
    if not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed "
            "(pip install 'casework[otel]'): running without tracing"
        )
        return False
    name = env.get("OTEL_SERVICE_NAME") or f"casework-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    enable(provider)
    return True


def shutdown() -> None:
    """Send the spans still buffered (a stopping process would lose them)."""
    global _provider
    provider, _provider = _provider, None
    if provider is not None:
        provider.shutdown()


def interceptors() -> list[Interceptor]:
    """Temporal client interceptors: the tracing one while tracing is on, else none.

    A worker built on the client uses them too (the interceptor is both kinds).
    """
    if _provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    # Spans carry the workflow ID, which is the case ID, as `temporalWorkflowID`.
    return [TracingInterceptor(_provider.get_tracer("casework"))]
