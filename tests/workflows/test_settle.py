"""An action taken while a case waits for its mail before continuing-as-new.

Attesting an IPA rolls it over to a fresh run, once its handlers and its mail in
flight are done. An action accepted while that mail was still on its way (the relay
slow, the database briefly out of reach: found by `make chaos`, postgres-outage) was
cut off by the roll-over: the caller got an error although the case had closed, and
its events and decision mail were never written.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateStage
from temporalio.worker import Worker

from app.platform.settings import Settings
from tests.fixtures_temporal import SmtpSink, eventually
from tests.workflows.ipa_helpers import (
    EMPLOYEE,
    OFFICER,
    act,
    event_kinds,
    fast_policy,
    load_people,
    new_case,
    start,
)
from worker import WORKFLOWS, build_activities, workflow_runner
from workflows.common import ActionRequest, CaseSnapshot
from workflows.registry import ACT_UPDATE

WORKFLOW_TASK = (
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
)


@pytest.fixture(autouse=True)
def people(engine: Engine) -> None:
    load_people(engine)


async def mail_activities(handle: WorkflowHandle[Any, Any]) -> tuple[int, int, bool]:
    """(send_mail scheduled, send_mail completed, no workflow task pending) in this run."""
    history = await handle.fetch_history()
    mail: set[int] = set()
    completed = 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == "send_mail":
                mail.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed += event.activity_task_completed_event_attributes.scheduled_event_id in mail
    # Quiet: the workflow has seen everything so far (its last task completed, not failed).
    tasks = [e.event_type for e in history.events if e.event_type in WORKFLOW_TASK]
    return len(mail), completed, tasks[-1] == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED


async def test_an_action_accepted_while_a_roll_over_waits_for_mail_is_not_cut_off(
    temporal_client: Client,
    settings: Settings,
    engine: Engine,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    queue = f"test-{uuid.uuid4().hex[:8]}"
    policy = fast_policy()
    for stage in ("sac_review", "active"):  # elapsed time: no local activity to register
        durations = policy.stages["ipa_approval"][stage]
        durations.sla, durations.remind, durations.escalate_every = "P10D", "P5D", "P5D"
    activities = build_activities(settings, engine)
    send_mail = [a for a in activities if getattr(a, "__name__", "") == "send_mail"]
    executor = ThreadPoolExecutor(4)

    def activity_worker(registered: list[Any]) -> Worker:
        return Worker(
            temporal_client, task_queue=queue, activities=registered, activity_executor=executor
        )

    workflows = Worker(
        temporal_client, task_queue=queue, workflows=WORKFLOWS, workflow_runner=workflow_runner()
    )
    try:
        async with workflows:
            async with activity_worker(activities):
                started, case = await start(temporal_client, queue, new_case(policy, manager=""))
                # This run's history, not the latest run's: attesting rolls it over.
                handle = temporal_client.get_workflow_handle(case.id, run_id=started.result_run_id)

                async def all_mail_sent() -> bool:
                    scheduled, completed, _ = await mail_activities(handle)
                    return scheduled == completed

                await eventually(all_mail_sent)
                sink.refuse_with = "451 4.3.0 try again later"
                await act(started, OFFICER, "approve")
                # The roll-over to a fresh run now waits for the approval's mail.
                await act(started, EMPLOYEE, "attest")

            # Only mail gets through: the records cannot be written for now.
            async with activity_worker(send_mail):
                retire = await started.start_update(
                    ACT_UPDATE,
                    ActionRequest("retire", EMPLOYEE, {}),
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                    result_type=CaseSnapshot,
                )
                sink.refuse_with = None

                async def mail_done_and_seen() -> bool:
                    scheduled, completed, quiet = await mail_activities(handle)
                    return scheduled == completed and quiet

                # Without the fix, the roll-over now cuts the action off: the run continues
                # as new with its handler unfinished (here a warning, so an error, fails the
                # workflow task again and again; in production the update fails).
                await eventually(mail_done_and_seen, timeout=60)  # retries back off 1, 2, 4 s

            async with activity_worker(activities):
                closed = await retire.result()
                assert closed.status == "closed" and closed.outcome == "retired"

        kinds = event_kinds(engine, case.id)
        assert kinds.count("attest") == 1
        assert kinds.count("retire") == 1
        assert kinds.count("closed") == 1
    finally:
        executor.shutdown(wait=True)
