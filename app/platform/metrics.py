"""Prometheus metrics at `/metrics`: what an operator watches, and why it is counted there.

Cases opened and closed, open and overdue cases by stage, escalations and emails are
read from the read model at scrape time (`ReadModelCollector`), not counted in the
process that did them. Casework runs as several worker and web processes, any of
which may open a case, send a mail or die; counters kept in each process would be
lost with it and only add up across the fleet with care. The read model already
holds each of those facts exactly once (an event, a `sent_mail` row), so every web
server reports the same, complete totals: aggregate with `max`, not `sum`, across
web servers. A count falls only if rows are purged (retention), which Prometheus
reads as a counter reset.

The one per-process figure is the latency of actions (`casework_action_seconds`),
measured where the request is served; sum it across web servers as usual.

Temporal's own SDK metrics (workflow and activity task latencies, failures, poll
counts) come from the worker's runtime on CASEWORK_METRICS_PORT: see `sdk_runtime`.
`app.api.metrics` serves these at `/metrics` and times the API's actions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session, sessionmaker

from models import Case, CaseEvent, SentMail
from workflows.registry import CASE_TYPES

if TYPE_CHECKING:
    from temporalio.runtime import Runtime

    from app.platform.settings import Settings

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# From a person's click to the case's new state: an update round trip through Temporal.
ACTION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TYPE_BY_PREFIX = {rules.prefix: name for name, rules in CASE_TYPES.items()}
ACTIONS = {a.name for rules in CASE_TYPES.values() for a in rules.actions}


class ReadModelCollector(Collector):
    """Counts read from the read model each time Prometheus scrapes."""

    def __init__(self, sessions: Callable[[], sessionmaker[Session] | None]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        sessions = self._sessions()
        if sessions is None:  # the app has not started: nothing to read yet
            return
        opened = CounterMetricFamily(
            "casework_cases_opened", "Cases opened, by type", labels=["type"]
        )
        closed = CounterMetricFamily(
            "casework_cases_closed", "Cases closed, by type and outcome", labels=["type", "outcome"]
        )
        open_now = GaugeMetricFamily(
            "casework_cases_open", "Open cases, by type and stage", labels=["type", "stage"]
        )
        overdue = GaugeMetricFamily(
            "casework_cases_overdue",
            "Open cases past their stage's due time, by type and stage",
            labels=["type", "stage"],
        )
        escalations = CounterMetricFamily(
            "casework_escalations", "Escalations to a manager, by case type", labels=["type"]
        )
        emails = CounterMetricFamily(
            "casework_emails",
            "Emails by outcome: sent, or failed for good (refused by the relay)",
            labels=["status", "kind"],
        )
        with sessions() as session:
            by_type = select(Case.type, func.count()).group_by(Case.type)
            for case_type, n in session.execute(by_type):
                opened.add_metric([case_type], n)
            ended = (
                select(Case.type, Case.outcome, func.count())
                .where(Case.status == "closed")
                .group_by(Case.type, Case.outcome)
            )
            for case_type, outcome, n in session.execute(ended):
                closed.add_metric([case_type, outcome or ""], n)
            by_stage = (
                select(Case.type, Case.stage, func.count(), func.sum(cast(Case.overdue, Integer)))
                .where(Case.status == "open")
                .group_by(Case.type, Case.stage)
            )
            for case_type, stage, n, late in session.execute(by_stage):
                open_now.add_metric([case_type, stage], n)
                overdue.add_metric([case_type, stage], late or 0)
            escalated = (
                select(Case.type, func.count())
                .join(CaseEvent, CaseEvent.case_id == Case.id)
                .where(CaseEvent.kind == "escalated")
                .group_by(Case.type)
            )
            for case_type, n in session.execute(escalated):
                escalations.add_metric([case_type], n)
            mails = select(SentMail.status, SentMail.kind, func.count()).group_by(
                SentMail.status, SentMail.kind
            )
            for status, kind, n in session.execute(mails):
                emails.add_metric([status, kind], n)
        yield from (opened, closed, open_now, overdue, escalations, emails)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # nothing at registration: the database may not answer yet


# Per process, shared by every app in it: the API's actions (and the pages', if they
# time theirs) land in one histogram.
ACTION_SECONDS = Histogram(
    "casework_action_seconds",
    "Seconds to take an action, by case type, action and result",
    ["type", "action", "result"],
    buckets=ACTION_BUCKETS,
    registry=None,
)


def sdk_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime serving the SDK's metrics on CASEWORK_METRICS_PORT, or None.

    Made the default runtime before the first client connects, so the worker's client
    (and any activity's `activity.metric_meter()`) reports through it.
    """
    if settings.metrics_port is None:
        return None
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    host = settings.http_host
    address = (
        f"[{host}]:{settings.metrics_port}" if ":" in host else f"{host}:{settings.metrics_port}"
    )
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=address, durations_as_seconds=True)
        )
    )
    Runtime.set_default(runtime, error_if_already_set=False)
    return runtime
