"""How wide send_mail's at-least-once window is: from the relay having a message to the
delivery being noted where a retry on another worker would find it.

    python -m chaos.window [MAILS] [AT_ONCE]

A real worker (in this process), dev server, relay and SQLite records database, and
MAILS one-mail workflows, AT_ONCE at a time. For each mail it prints how long after
the relay stamped it (as chaos/mail.py does) the activity called `activity.heartbeat`,
the SDK handed that heartbeat to its core (which sends it on to Temporal at once: the
first heartbeat of an attempt is not throttled), and the `sent_mail` row was
committed. A SIGKILL inside that span resends; after it, it does not. The SDK is
wrapped here, not changed, to see those moments; the product runs unwrapped.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import temporalio.activity
import temporalio.bridge.worker
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.notifications import NotificationActivities, SmtpConfig
from app.platform.db import session_factory
from app.platform.temporal import connect
from chaos.rig import stack
from domain.mail import make_template_env, message_id
from domain.records import upsert_case
from workflows.common import CaseSnapshot, MailRequest

CASE_ID = "IPA-2026-000001"
TASK_QUEUE = "chaos-window"


class Moments:
    """When each mail (by workflow id) reached each point, time.time()."""

    def __init__(self) -> None:
        self.heartbeat_called: dict[str, float] = {}
        self.handed_to_core: dict[str, float] = {}
        self.recorded: dict[str, float] = {}

    def watch(self) -> None:
        heartbeat = temporalio.activity.heartbeat
        to_core = temporalio.bridge.worker.Worker.record_activity_heartbeat
        record = NotificationActivities._record

        def heartbeat_stamped(*details: Any) -> None:
            self.heartbeat_called[temporalio.activity.info().workflow_id or ""] = time.time()
            heartbeat(*details)

        def to_core_stamped(worker: Any, beat: Any) -> None:
            # Runs in the SDK's heartbeat task, which copied the activity's context.
            self.handed_to_core[temporalio.activity.info().workflow_id or ""] = time.time()
            to_core(worker, beat)

        def record_stamped(acts: NotificationActivities, *args: Any) -> None:
            record(acts, *args)
            self.recorded[args[0].key] = time.time()

        temporalio.activity.heartbeat = heartbeat_stamped
        temporalio.bridge.worker.Worker.record_activity_heartbeat = to_core_stamped  # type: ignore[method-assign,assignment]
        NotificationActivities._record = record_stamped  # type: ignore[method-assign,assignment]


@workflow.defn(sandboxed=False)
class OneMail:
    @workflow.run
    async def run(self, req: MailRequest) -> None:
        await workflow.execute_activity(
            "send_mail", req, start_to_close_timeout=timedelta(minutes=1)
        )


def _line(name: str, ms: list[float]) -> str:
    ordered = sorted(ms)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return (
        f"{name}: median {statistics.median(ms):.0f} ms, p90 {at(0.9):.0f}, p99 {at(0.99):.0f},"
        f" max {ordered[-1]:.0f} (n={len(ms)})"
    )


async def measure(mails: int, at_once: int) -> list[str]:
    moments = Moments()
    moments.watch()
    run = uuid.uuid4().hex[:6]
    async with stack("window", workers=0) as s:
        now = datetime.now(UTC)
        with session_factory(s.engine).begin() as session:
            upsert_case(
                session,
                CaseSnapshot(
                    id=CASE_ID,
                    type="ipa_approval",
                    status="open",
                    stage="sac_review",
                    requester="employee0@dwp.gov.uk",
                    opened_at=now,
                    updated_at=now,
                ),
            )
        smtp = SmtpConfig("127.0.0.1", s.mail.port)
        acts = NotificationActivities(
            s.engine, smtp, "casework@example.org", "http://casework.test", make_template_env()
        )
        client = await connect(s.settings)  # a worker needs an eager client
        context = {"case_type": "ipa_approval", "due_at": now.isoformat(), "recipient_name": "E"}
        limit = asyncio.Semaphore(at_once)

        async def one(n: int) -> None:
            req = MailRequest(
                key=f"{run}m{n}",
                case_id=CASE_ID,
                kind="action_needed",
                to=["employee0@dwp.gov.uk"],
                stage="sac_review",
                context=context,
            )
            async with limit:
                await client.execute_workflow(
                    OneMail.run, req, id=f"{run}-{n}", task_queue=TASK_QUEUE
                )

        async with Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[OneMail],
            activities=[acts.send_mail],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            await asyncio.gather(*(one(n) for n in range(mails)))
        await acts.aclose()
        arrivals = s.mail.arrivals()
    spans: dict[str, list[float]] = {"called": [], "core": [], "recorded": []}
    for n in range(mails):
        [copy] = arrivals[message_id(CASE_ID, f"{run}m{n}", opaque=False)]
        spans["called"].append(1000 * (moments.heartbeat_called[f"{run}-{n}"] - copy.at))
        spans["core"].append(1000 * (moments.handed_to_core[f"{run}-{n}"] - copy.at))
        spans["recorded"].append(1000 * (moments.recorded[f"{run}m{n}"] - copy.at))
    return [
        f"{mails} mails, {at_once} at a time; after the relay had each:",
        _line("  activity.heartbeat called", spans["called"]),
        _line("  heartbeat handed to the SDK core", spans["core"]),
        _line("  sent_mail row committed", spans["recorded"]),
    ]


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    print("\n".join(asyncio.run(measure(*(args + [300, 20][len(args) :])))))
