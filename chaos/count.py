"""Counting what happened, from three independent sources:

- Temporal's histories (every run of each case): each `send_mail` the workflows
  scheduled, so each email they meant to send, and its Message-ID;
- the records database: the case rows, every event in the audit trail, and
  `casework audit verify` over the hash chains;
- the SMTP relay: each message received, by Message-ID.

Lost: a case not completed, an expected transition missing from the audit trail,
an email meant but never received. Duplicated: a transition recorded more than once,
a Message-ID received more than once for any reason but one: resent after its sender
was SIGKILLed inside SMTP's at-least-once window (chaos/duplicates.py), which is
printed with its timings but does not fail the run.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from chaos.duplicates import SendActivity, classify, pid_of
from chaos.rig import Stack, gather_limited
from domain.mail import ANONYMOUS_KINDS, message_id
from models import Case, CaseEvent
from workflows.common import MailRequest


@dataclass
class MailPlan:
    """What the histories say: the emails the workflows scheduled (Message-ID -> kind),
    and the work a fault interrupted (retried activities, workflow tasks timed out)."""

    kinds: dict[str, str] = field(default_factory=dict)
    sends: dict[str, list[SendActivity]] = field(default_factory=dict)  # by Message-ID
    max_attempt: int = 0
    retried: Counter[str] = field(default_factory=Counter)  # activity type -> retried ones
    task_timeouts: int = 0  # workflow tasks a worker took and never finished
    task_failures: int = 0

    def add(self, other: MailPlan) -> None:
        self.kinds.update(other.kinds)
        for mid, sends in other.sends.items():
            self.sends.setdefault(mid, []).extend(sends)
        self.max_attempt = max(self.max_attempt, other.max_attempt)
        self.retried.update(other.retried)
        self.task_timeouts += other.task_timeouts
        self.task_failures += other.task_failures


async def _mails_of(client: Client, case_id: str) -> MailPlan:
    plan = MailPlan()
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(case_id, run_id=run_id).fetch_history()
        types: dict[int, str] = {}
        mails: dict[int, str] = {}  # scheduled event id -> Message-ID, in this run
        last_attempt: dict[int, tuple[int, int | None]] = {}  # -> (attempt, worker pid)
        for event in history.events:
            if event.HasField("activity_task_scheduled_event_attributes"):
                scheduled = event.activity_task_scheduled_event_attributes
                types[event.event_id] = scheduled.activity_type.name
                if scheduled.activity_type.name != "send_mail":
                    continue
                # Through the client's converter, so a payload codec is undone as for any read.
                [request] = await client.data_converter.decode(
                    scheduled.input.payloads, [MailRequest]
                )
                mid = message_id(case_id, request.key, opaque=request.kind in ANONYMOUS_KINDS)
                plan.kinds[mid] = request.kind
                mails[event.event_id] = mid
            elif event.HasField("activity_task_started_event_attributes"):
                started_task = event.activity_task_started_event_attributes
                plan.max_attempt = max(plan.max_attempt, started_task.attempt)
                last_attempt[started_task.scheduled_event_id] = (
                    started_task.attempt,
                    pid_of(started_task.identity),
                )
                if started_task.attempt > 1:
                    plan.retried[types.get(started_task.scheduled_event_id, "?")] += 1
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                plan.task_timeouts += 1
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                plan.task_failures += 1
        for scheduled_id, mid in mails.items():
            attempts, pid = last_attempt.get(scheduled_id, (0, None))
            plan.sends.setdefault(mid, []).append(SendActivity(attempts, pid))
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:  # the first run of the case
            return plan


async def scheduled_mails(stack: Stack, case_ids: list[str]) -> MailPlan:
    plans = await gather_limited(8, [_mails_of(stack.svc.client, c) for c in case_ids])
    total = MailPlan()
    for plan in plans:
        total.add(plan)
    return total


@dataclass
class Tally:
    cases: int = 0
    completed: int = 0
    events: int = 0
    transitions: int = 0  # events of the kinds expected, counted once each
    emails_expected: int = 0
    emails_received: int = 0  # messages the relay accepted (a duplicate counts twice)
    message_ids: int = 0  # distinct Message-IDs received
    refused_events: int = 0  # refused attempts in the audit trail (a retry that was too late)
    max_attempt: int = 0
    interrupted: str = ""
    audit: str = ""
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)  # explained: chaos/duplicates.py

    def lines(self) -> list[str]:
        return [
            f"cases {self.cases}, completed {self.completed}",
            f"events {self.events}, transitions expected and found once {self.transitions}"
            f", refused attempts {self.refused_events}",
            f"emails expected {self.emails_expected}, received {self.emails_received}"
            f", distinct Message-IDs {self.message_ids}",
            f"in the histories: {self.interrupted}; most attempts an activity took"
            f" {self.max_attempt}",
            f"audit verify: {self.audit}",
            f"lost {len(self.lost)}, duplicated {len(self.duplicated)}; resent after a"
            f" SIGKILL inside SMTP's at-least-once window {len(self.resent)}",
            *(f"  LOST {x}" for x in self.lost[:20]),
            *(f"  DUPLICATED {x}" for x in self.duplicated[:20]),
            *(f"  RESENT {x}" for x in self.resent),
        ]


def audit_verify(stack: Stack) -> tuple[bool, str]:
    """`casework audit verify` over the whole records database, as an operator runs it."""
    casework = Path(sys.executable).parent / "casework"
    env = {**stack.env, "CASEWORK_DATABASE_URL": stack.database.url}
    done = subprocess.run(
        [str(casework), "audit", "verify"], env=env, capture_output=True, text=True, timeout=300
    )
    said = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode == 0, (said[-1] if said else f"exit {done.returncode}")


async def tally(
    stack: Stack,
    case_ids: list[str],
    expected_events: dict[str, int],
    *,
    must_complete: bool,
) -> Tally:
    t = Tally(cases=len(case_ids))

    def read(session: Session) -> tuple[list[Case], list[tuple[str, str]]]:
        cases = list(session.scalars(select(Case).where(Case.id.in_(case_ids))))
        events = [
            (row.case_id, row.kind)
            for row in session.execute(
                select(CaseEvent.case_id, CaseEvent.kind).where(CaseEvent.case_id.in_(case_ids))
            )
        ]
        return cases, events

    rows, events = await stack.svc.run(read)
    closed = {row.id for row in rows if row.status == "closed"}
    t.completed = len(closed)
    if must_complete:
        t.lost += [f"{c}: not completed" for c in case_ids if c not in closed]
    t.events = len(events)
    t.refused_events = sum(1 for _, kind in events if kind == "refused")
    counts = Counter(events)
    for case_id in case_ids:
        for kind, wanted in expected_events.items():
            found = counts[(case_id, kind)]
            if found < wanted:
                t.lost.append(f"{case_id}: {kind} in the audit trail {found} times, not {wanted}")
            elif found > wanted:
                t.duplicated.append(f"{case_id}: {kind} in the audit trail {found} times")
            else:
                t.transitions += wanted

    # Received first, then the histories: whatever was received had been scheduled by then.
    received = stack.mail.snapshot()
    arrivals = stack.mail.arrivals()
    kills = [kill for worker in stack.workers for kill in worker.killed]
    workers = {pid: worker.name for worker in stack.workers for pid in worker.pids}
    plan = await scheduled_mails(stack, case_ids)
    t.max_attempt = plan.max_attempt
    retried = ", ".join(f"{n} {name}" for name, n in sorted(plan.retried.items())) or "none"
    t.interrupted = (
        f"workflow tasks timed out {plan.task_timeouts}, failed {plan.task_failures};"
        f" activities retried: {retried}"
    )
    t.emails_expected = len(plan.kinds)
    t.emails_received = sum(received.values())
    t.message_ids = len(received)
    for mid, kind in sorted(plan.kinds.items()):
        if received[mid] == 0:
            t.lost.append(f"email {kind} {mid}: never received")
    for mid, times in sorted(received.items()):
        if mid not in plan.kinds:
            t.duplicated.append(f"email {mid}: received but never scheduled")
        elif times > 1:
            verdict = classify(mid, arrivals[mid], kills, plan.sends.get(mid, []), workers)
            (t.resent if verdict.explained else t.duplicated).append(f"email {verdict.text}")

    ok, said = audit_verify(stack)
    t.audit = said
    if not ok:
        t.lost.append(f"casework audit verify failed: {said}")
    stack.keep = bool(t.lost or t.duplicated)
    return t
