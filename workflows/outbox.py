"""The audit trail and mail of a case workflow: every change is recorded once, then its
mail is sent.

`emit` queues an audit event, `mail` an email, and `commit` plans the new stage's
clock, writes the events and the case row in one activity (`RECORD_ACTIVITY`: each
event once, by its key), then sends the mail that change caused, each email once
(its key makes its Message-ID). Standard library and temporalio only.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.base import RECORD_TIMEOUT, CaseBase, StateT
from workflows.common import EventIn, MailRequest, RecordRequest, TeamMembers, TeamMembersRequest
from workflows.registry import RECORD_ACTIVITY, SEND_MAIL_ACTIVITY, TEAM_MEMBERS_ACTIVITY

# Mail is retried until the relay is back: a reminder late is better than lost.
MAIL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))


@dataclass
class _Mail:
    key: str
    kind: str
    to: list[str]
    team: str | None
    context: dict[str, Any] = field(default_factory=dict)


class Outbox(CaseBase[StateT]):
    def init_outbox(self) -> None:
        self._pending: list[EventIn] = []
        self._outbox: list[_Mail] = []
        self._mail_tasks: list[asyncio.Task[None]] = []
        self._record_lock = asyncio.Lock()

    def _key(self, prefix: str) -> str:
        n = self.state.next_event
        self.state.next_event += 1
        return f"{prefix}{n}"

    def emit(self, kind: str, actor: str, data: dict[str, Any]) -> EventIn:
        """Queue an audit event; `commit` writes it exactly once."""
        event = EventIn(
            key=self._key("e"),
            kind=kind,
            actor=actor,
            at=workflow.now(),
            stage=self.case.stage,
            data=data,
        )
        self._pending.append(event)
        return event

    def mail(
        self, kind: str, to: list[str | None], *, team: str | None = None, **context: Any
    ) -> None:
        """Queue an email; it is sent once the change it reports is recorded. Never to a
        party in conflict, whoever asks for it."""
        in_conflict = set(self.people_in_conflict())
        recipients = sorted({t for t in to if t and t not in in_conflict})
        if recipients or team:
            self._outbox.append(_Mail(self._key("m"), kind, recipients, team, context))

    def mail_party(self, kind: str, to: str, **context: Any) -> None:
        """Queue an email to a party in conflict, of what is theirs to know (a subject's
        outcome and appeal window): the one exception to `mail`'s rule, asked by name."""
        self._outbox.append(_Mail(self._key("m"), kind, [to], None, context))

    def _mail_request(self, mail: _Mail) -> MailRequest:
        case = self.case
        return MailRequest(
            key=mail.key,
            case_id=case.id,
            kind=mail.kind,
            to=mail.to,
            stage=case.stage,
            confidential=case.confidential,
            context={
                "case_type": case.type,
                "stage": case.stage,
                "outcome": case.outcome,
                "owner": case.owner or f"the {case.team} team",
                "due_at": case.due_at.isoformat() if case.due_at else None,
                "details": case.details,
                **mail.context,
            },
        )

    async def commit(self) -> None:
        """Plan the new stage's clock, record events and the case row, then send mail."""
        async with self._record_lock:
            await self.plan_clock()
            self.case.updated_at = workflow.now()
            events, self._pending = self._pending, []
            # A deep copy: the activity's input is encoded after this coroutine yields.
            record = RecordRequest(case=copy.deepcopy(self.case), events=events)
            outbox, self._outbox = self._outbox, []
            requests = [(self._mail_request(m), m.team) for m in outbox]
            await workflow.execute_activity(
                RECORD_ACTIVITY, record, start_to_close_timeout=RECORD_TIMEOUT
            )
        for request, team in requests:
            self._mail_tasks.append(asyncio.create_task(self._send(request, team)))
        await self.tell_followers()

    async def _send(self, request: MailRequest, team: str | None) -> None:
        if team:
            members = await workflow.execute_activity(
                TEAM_MEMBERS_ACTIVITY,
                TeamMembersRequest(team=team),
                result_type=TeamMembers,
                start_to_close_timeout=RECORD_TIMEOUT,
            )
            # A party in conflict who is in the team (an investigation's perpetrator in
            # SIRT) is not told of the case through its queue.
            members.emails = [m for m in members.emails if m not in self.never_escalated_to()]
            request.to = sorted(set(request.to) | set(members.emails))
        if request.to:
            await workflow.execute_activity(
                SEND_MAIL_ACTIVITY,
                request,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=MAIL_RETRY,
            )

    async def settle(self) -> None:
        """Wait for mail in flight and for handlers, before completing or continuing.

        Until both are done at once: an action accepted while mail was in flight (taken
        during a roll-over) would otherwise be cut off by continue-as-new, unrecorded.
        """
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self._mail_tasks:
                return
            tasks, self._mail_tasks = self._mail_tasks, []
            await asyncio.gather(*tasks)
