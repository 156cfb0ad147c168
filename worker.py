"""Builds the Casework worker: every case workflow, and activities wired to their
database, mail relay and templates. The one place real adapters are chosen.
"""

from __future__ import annotations

import concurrent.futures
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.cases import LinkedCaseActivities
from activities.directory import DirectoryActivities
from activities.notifications import NotificationActivities, SmtpConfig
from activities.records import RecordActivities
from activities.retention import RetentionActivities
from activities.schedule import add_offsets
from app.platform.db import session_factory
from app.platform.logs import CaseIdInterceptor
from app.platform.settings import Settings
from domain.mail import make_template_env
from domain.policy import load_policy
from workflows.exception import PolicyExceptionWorkflow
from workflows.investigation import AbuseInvestigationWorkflow
from workflows.ipa import IpaApprovalWorkflow
from workflows.referral import DisciplinaryReferralWorkflow
from workflows.retention import RetentionWorkflow

WORKFLOWS: list[type] = [
    IpaApprovalWorkflow,
    DisciplinaryReferralWorkflow,
    AbuseInvestigationWorkflow,
    PolicyExceptionWorkflow,
    RetentionWorkflow,
]

# The workflows' own standard-library-only type modules are loaded once, outside the
# sandbox: cheaper per run, and their datetimes are the real class the converter knows.
PASSTHROUGH = (
    "workflows.common",
    "workflows.rules",
    "workflows.durations",
    "workflows.localtime",
    "workflows.clock",
    "workflows.base",
    "workflows.outbox",
    "workflows.chase",
    "workflows.links",
    "workflows.registry",
    "workflows.ipa_types",
    "workflows.referral_types",
    "workflows.investigation_types",
    "workflows.exception_types",
    # The engine every case workflow builds on: re-imported for each new run it cost
    # ~4 ms CPU per case (bench/RESULTS.md). Outside the sandbox its clock and I/O calls
    # are not caught at run time, so tests/workflows/test_passthrough.py checks them.
    "workflows.engine",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


# Blocking SQLAlchemy activities run on this many threads per worker.
ACTIVITY_THREADS = 16


def smtp_config(settings: Settings) -> SmtpConfig:
    return SmtpConfig(
        host=settings.smtp_host or "127.0.0.1",
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
    )


def build_activities(settings: Settings, engine: Engine) -> list[Any]:
    sessions = session_factory(engine)
    records = RecordActivities(engine)
    directory = DirectoryActivities(engine)
    # Reading the policy also reads its time zone, which workflows then find in zoneinfo's
    # cache (workflows/localtime.py): no workflow task reads the time-zone database.
    policy = load_policy(settings.policy_file)
    linked = LinkedCaseActivities(engine, policy)
    retention = RetentionActivities(engine, policy)
    notifications = NotificationActivities(
        sessions,
        smtp_config(settings),
        mail_from=settings.mail_from,
        base_url=settings.base_url,
        env=make_template_env(timezone=policy.timezone),
    )
    return [
        records.record,
        directory.escalation_target,
        directory.team_members,
        notifications.send_mail,
        add_offsets,
        linked.prepare_linked_case,
        linked.read_case,
        retention.apply,
    ]


def build_worker(
    client: Client,
    *,
    settings: Settings,
    engine: Engine,
    task_queue: str | None = None,
    max_cached_workflows: int | None = None,  # None: settings.workflow_cache_size
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        activities=build_activities(settings, engine),
        activity_executor=concurrent.futures.ThreadPoolExecutor(ACTIVITY_THREADS),
        max_cached_workflows=(
            settings.workflow_cache_size if max_cached_workflows is None else max_cached_workflows
        ),
        interceptors=[CaseIdInterceptor()],  # activity log lines carry their case id
        # On shutdown (a deploy, Ctrl-C), activities in flight finish rather than retry.
        graceful_shutdown_timeout=timedelta(seconds=10),
    )
