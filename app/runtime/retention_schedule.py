"""The daily retention run (`domain.retention`): a Temporal schedule, created once.

`casework up` and `casework worker` make sure it exists; it starts the `retention`
workflow every day, whose activity anonymises or purges what the policy file says.
"""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
)

from workflows.retention import RETENTION_WORKFLOW, RetentionRun

SCHEDULE_ID = "casework-retention"
# 02:30 UTC: after the working day everywhere Casework is used, before the next.
RUN_AT = ScheduleCalendarSpec(hour=[ScheduleRange(2)], minute=[ScheduleRange(30)])


def schedule(task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RETENTION_WORKFLOW, RetentionRun(), id=f"{SCHEDULE_ID}-run", task_queue=task_queue
        ),
        spec=ScheduleSpec(calendars=[RUN_AT]),
        # A run still going (or a worker down all day) is not run twice at once.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_schedule(client: Client, task_queue: str) -> bool:
    """Create the daily retention schedule unless it exists; True if created now.

    Every `casework up` and `casework worker` calls this, so it must be idempotent:
    the first creates it, the rest find it there and leave it (and any pause an
    operator set with `temporal schedule toggle`) alone.
    """
    try:
        await client.create_schedule(SCHEDULE_ID, schedule(task_queue))
    except ScheduleAlreadyRunningError:
        return False
    return True
