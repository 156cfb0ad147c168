"""The retention workflow with the real activity, and its daily schedule on a dev server
(the time-skipping server has no schedules)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.records import RecordActivities
from app.platform.settings import Settings
from app.runtime.retention_schedule import SCHEDULE_ID, ensure_schedule
from app.service.audit import verify
from models import Case
from tests.domain.test_retention import RETENTION, SHIPPED, closed
from tests.fixtures_temporal import SmtpSink, eventually, make_settings, server_binary
from worker import build_worker
from workflows.retention import RETENTION_WORKFLOW, RetentionResult, RetentionRun

ABU_OLD, ABU_RECENT = "ABU-2020-000001", "ABU-2026-000001"


@pytest.fixture
def settings(tmp_path: Path, db_url: str, smtp_sink: tuple[SmtpSink, int]) -> Settings:
    """The worker's policy keeps closed investigations two years, then anonymises them."""
    file = tmp_path / "policy.toml"
    file.write_text(SHIPPED + RETENTION, encoding="utf-8")
    return make_settings(tmp_path, db_url, smtp_sink[1], CASEWORK_POLICY_FILE=str(file))


@pytest.fixture
def recorded(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    now = datetime.now(UTC)
    acts = RecordActivities(sessions)
    acts.record(closed(ABU_OLD, "abuse_investigation", now - timedelta(days=3 * 365)))
    acts.record(closed(ABU_RECENT, "abuse_investigation", now - timedelta(days=30)))
    return sessions


def details(sessions: sessionmaker[Session], case_id: str) -> dict[str, object]:
    with sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        return dict(case.details)


async def test_the_retention_workflow_anonymises_what_is_past_retention(
    time_skipping_env: WorkflowEnvironment, worker: Worker, recorded: sessionmaker[Session]
) -> None:
    result = await time_skipping_env.client.execute_workflow(
        RETENTION_WORKFLOW,
        RetentionRun(),
        id=f"retention-{uuid.uuid4().hex[:8]}",
        task_queue=worker.task_queue,
        result_type=RetentionResult,
    )
    assert (result.anonymised, result.purged) == ([ABU_OLD], [])
    assert details(recorded, ABU_OLD) == {} and details(recorded, ABU_RECENT) != {}
    with recorded() as session:
        assert verify(session).ok


@pytest.mark.real_clock  # the dev server cannot travel: the machine's clock
async def test_the_schedule_is_created_once_and_its_run_anonymises(
    settings: Settings, engine: Engine, recorded: sessionmaker[Session]
) -> None:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=server_binary("temporal"))
    queue = f"test-{uuid.uuid4().hex[:8]}"
    try:
        worker = build_worker(env.client, settings=settings, engine=engine, task_queue=queue)
        async with worker:
            # Every `casework up` and `casework worker` asks; only the first creates it.
            assert await ensure_schedule(env.client, queue) is True
            assert await ensure_schedule(env.client, queue) is False
            handle = env.client.get_schedule_handle(SCHEDULE_ID)
            described = await handle.describe()
            action = described.schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert (action.workflow, action.task_queue) == (RETENTION_WORKFLOW, queue)
            (daily,) = described.schedule.spec.calendars
            assert [r.start for r in daily.hour] == [2] and [r.start for r in daily.minute] == [30]

            await handle.trigger()  # what 02:30 does, now
            await eventually(lambda: details(recorded, ABU_OLD) == {}, timeout=30)
            assert details(recorded, ABU_RECENT) != {}
            await handle.delete()
        executor = worker.config().get("activity_executor")
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)
    finally:
        await env.shutdown()
