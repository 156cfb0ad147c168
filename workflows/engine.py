"""What every case workflow shares: human actions as validated updates, the audit
trail, notifications, and the service-level clock that reminds, marks overdue
and escalates up the management chain.

A case type subclasses `CaseWorkflow`, names its table (`RULES`, `STAGE_OWNER`)
and says what each action does in `apply`. Deterministic: no I/O, no clock but
Temporal's, and activities are called by name so no activity code (nor
SQLAlchemy) is imported into the sandbox.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

from workflows.common import (
    CLOSED,
    CLOSED_STAGE,
    OPEN,
    SYSTEM_ACTOR,
    ActionRequest,
    Actor,
    CaseInput,
    CasePolicy,
    CaseSnapshot,
    CaseState,
    Clock,
    ClockPlan,
    EscalationTarget,
    EscalationTargetRequest,
    EventIn,
    Link,
    LinkedCaseNews,
    LinkedCasePlan,
    LinkedCaseRequest,
    MailRequest,
    OffsetsRequest,
    OffsetsResult,
    PolicyChange,
    PolicyChangeResult,
    PolicyPreview,
    RecordRequest,
    StageDurations,
    TeamMembers,
    TeamMembersRequest,
)
from workflows.durations import add_elapsed, add_months, parse_duration
from workflows.registry import (
    ACT_UPDATE,
    FOLLOW_SIGNAL,
    LINKED_SIGNAL,
    OPENED_UPDATE,
    POLICY_PREVIEW_QUERY,
    POLICY_UPDATE,
    SNAPSHOT_QUERY,
)
from workflows.rules import ActionRule, CaseTypeRules, Refusal, check_action, clean_fields

AWAITING_INFO = "awaiting_info"
LAPSED = "lapsed"

RECORD_TIMEOUT = timedelta(seconds=30)
# Patches (`workflow.patched`): each names a change to the commands a case issues.
ESCALATION_TARGET_LOCAL = "escalation-target-local"
# Working days judged in the policy's time zone, due at its working day's end.
LOCAL_TIME = "calendar-local-time"
# Mail is retried until the relay is back: a reminder late is better than lost.
MAIL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))


@dataclass
class _Mail:
    key: str
    kind: str
    to: list[str]
    team: str | None
    context: dict[str, Any] = field(default_factory=dict)


class CaseWorkflow:
    """Base of every case workflow. Subclasses add `@workflow.defn` and a `run`."""

    RULES: ClassVar[CaseTypeRules]
    # Stage -> the party of the case who owns it; None means the team's queue.
    STAGE_OWNER: ClassVar[dict[str, str | None]]

    def __init__(self, inp: CaseInput) -> None:
        self.policy = inp.policy
        self.state = inp.state or CaseState(case=inp.case)
        self._pending: list[EventIn] = []
        self._outbox: list[_Mail] = []
        self._mail_tasks: list[asyncio.Task[None]] = []
        self._record_lock = asyncio.Lock()
        self._roll_over = False

    @property
    def case(self) -> CaseSnapshot:
        return self.state.case

    # ---- what a case type fills in -------------------------------------------------

    def apply(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        """Carry out an allowed action: move stage, close, record what it says."""
        raise NotImplementedError

    def check(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        """Rules beyond the table (limits, dates): raise Refusal to refuse."""

    def first_stage(self) -> str:
        return self.RULES.stages[0]

    def clock_start(self, stage: str) -> str | None:
        """How long after entering `stage` its clock starts (None: at once)."""
        return None

    async def on_clock_start(self) -> None:
        """Called when a clock that starts after its stage begins does start."""

    def conflicted(self) -> list[str]:
        """People who must never receive this case's escalations (parties to it)."""
        return self.parties_in_conflict()

    def parties_in_conflict(self) -> list[str]:
        """Whoever `RULES.conflicted` names on this case now (an alleged perpetrator, a
        referral's subject): never mailed, never escalated to, never told through a queue."""
        named = (self.case.parties.get(party) for party in self.RULES.conflicted)
        return [email for email in named if email]

    def queue_of(self, stage: str) -> str | None:
        """The team mailed when `stage` waits on a queue (a decision for the team's leads:
        `"sac_lead"`). Its escalations still go to the case team's lead."""
        return self.case.team

    async def on_due(self) -> bool:
        """The open stage is due. Return True when the stage ends itself then (a question
        unanswered lapses, a window closes, an exception expires); False escalates."""
        if self.case.stage == AWAITING_INFO:
            self.close(LAPSED, {"reason": "no answer from the requester"})
            await self.commit()
            return True
        return False

    def on_linked_change(self, news: LinkedCaseNews) -> None:
        """A case this one raised has moved on (e.g. its exception was approved)."""

    def on_open(self) -> None:
        """The case is opening, its `opened` event emitted: emit what the opening implies
        (e.g. a referral flagged for criminal consideration). Recorded with the opening."""

    async def after_apply(
        self, rule: ActionRule, actor: Actor, fields: dict[str, Any], event: EventIn
    ) -> None:
        """The part of an action that waits on activities, after `apply` and before the
        change is recorded: a due time counted in working days, a linked case raised.
        `event` is the action's own audit event, to note what that part decided."""

    # ---- handlers ------------------------------------------------------------------

    @workflow.query(name=SNAPSHOT_QUERY)
    def snapshot(self) -> CaseSnapshot:
        return self.case

    @workflow.update(name=OPENED_UPDATE)
    async def opened(self) -> CaseSnapshot:
        await workflow.wait_condition(lambda: self.state.opened_recorded)
        return self.case

    @workflow.update(name=POLICY_UPDATE)
    async def policy_changed(self, change: PolicyChange) -> PolicyChangeResult:
        """Run under a new policy from now: the open stage's clock (and a paused one) is
        re-planned from the stage's start under the new SLAs and calendar, and the change
        recorded. A due time an action set (a hearing date, an expiry) stays."""
        await workflow.wait_condition(lambda: self.state.opened_recorded)
        old, new = self.policy.version, change.policy.version
        old_due = self.case.due_at
        if old == new or self.case.status != OPEN:
            return PolicyChangeResult(
                self.case.id, old, new, old_due, old_due, changed=False, stage=self.case.stage
            )
        # From here on, whatever plans a clock (an action in flight included) plans it anew,
        # on the new file's calendar in the staff's time zone.
        self.policy = change.policy
        self.case.policy_version = new
        self.state.local_time = True
        clock, paused = self.state.clock, self.state.paused_clock
        if clock is not None and (plan := self._replan(clock, self.case.stage)) is not None:
            planned = await self._planned(plan)
            if self.state.clock is clock and self.case.status == OPEN:
                self._retime(clock, *planned)
                self.case.due_at = clock.due_at
                if not clock.level:
                    self.case.overdue, self.case.escalation_level = False, 0
                self.state.transitions += 1  # the chase follows the new times
        stage = self.state.paused_stage
        if paused is not None and stage and (plan := self._replan(paused, stage)) is not None:
            planned = await self._planned(plan)
            if self.state.paused_clock is paused:
                self._retime(paused, *planned)
        new_due = self.case.due_at
        self.emit(
            "policy_changed",
            SYSTEM_ACTOR,
            {
                "from_version": old,
                "to_version": new,
                "old_due": old_due.isoformat() if old_due else None,
                "new_due": new_due.isoformat() if new_due else None,
            },
        )
        await self.commit()
        return PolicyChangeResult(self.case.id, old, new, old_due, new_due, stage=self.case.stage)

    @workflow.query(name=POLICY_PREVIEW_QUERY)
    def policy_preview(self, policy: CasePolicy) -> PolicyPreview:
        """What `policy_changed` would re-plan the open stage's clock from, under `policy`
        (a dry run: the caller counts the days). Changes nothing."""
        current, self.policy = self.policy, policy
        try:
            clock = self.state.clock
            plan = self._replan(clock, self.case.stage) if clock is not None else None
        finally:
            self.policy = current
        return PolicyPreview(self.case.id, self.case.stage, current.version, self.case.due_at, plan)

    @workflow.signal(name=LINKED_SIGNAL)
    async def linked_case_changed(self, news: LinkedCaseNews) -> None:
        if self.case.status != OPEN:
            return
        self.emit(
            "linked_case_changed",
            SYSTEM_ACTOR,
            {
                "case": news.case_id,
                "status": news.status,
                "stage": news.stage,
                "outcome": news.outcome,
            },
        )
        self.on_linked_change(news)
        await self.commit()

    @workflow.signal(name=FOLLOW_SIGNAL)
    async def follow(self, follower: Link) -> None:
        """One more case follows this one (an IPA naming an exception approved before it):
        linked both ways, and told where this case stands now and as it moves on."""
        followers: dict[str, str] = self.state.extra.setdefault("followers", {})
        if follower.id in followers or follower.id == self.state.extra.get("follower"):
            return
        if self.case.status != OPEN:
            await self._tell(follower.id)
            return
        followers[follower.id] = ""  # not told yet: the commit tells it
        self.case.links.append(Link(follower.id, follower.relation))
        self.emit("linked", SYSTEM_ACTOR, {"case": follower.id, "relation": follower.relation})
        await self.commit()

    @workflow.update(name=ACT_UPDATE)
    async def act(self, request: ActionRequest) -> CaseSnapshot:
        rule = self.RULES.action(request.action, self.case.stage)
        fields = clean_fields(rule.fields, request.fields)
        event = self.emit(rule.name, request.actor.email, dict(fields))
        self.apply(rule, request.actor, fields)
        await self.after_apply(rule, request.actor, fields, event)
        if self.case.stage != event.stage:
            event.data["to"] = self.case.stage
        await self.commit()
        return self.case

    @act.validator
    def validate_act(self, request: ActionRequest) -> None:
        try:
            if not self.state.opened_recorded:
                raise Refusal("conflict", "case: still opening, try again")
            rule = check_action(self.RULES, self.case, request.actor, request.action)
            self.check(rule, request.actor, clean_fields(rule.fields, request.fields))
        except Refusal as refusal:
            raise ApplicationError(refusal.message, refusal.field, type=refusal.code) from None

    # ---- the life of a case ----------------------------------------------------------

    async def run_case(self) -> CaseSnapshot:
        if not self.state.opened_recorded:
            await self._open()
        while self.case.status == OPEN:
            if self._roll_over or workflow.info().is_continue_as_new_suggested():
                await self._settle()
                workflow.continue_as_new(CaseInput(self.case, self.policy, self.state))
            await self._chase()
        await self._settle()
        return self.case

    async def _open(self) -> None:
        # The case opens when Temporal starts it: the clock and the record agree.
        self.case.opened_at = workflow.now()
        self.move_to(self.first_stage(), count=False)
        self.emit("opened", self.case.requester, {"details": self.case.details})
        for link in self.case.links:
            self.emit("linked", SYSTEM_ACTOR, {"case": link.id, "relation": link.relation})
        self.on_open()
        self.mail("opened", [self.case.requester])
        await self.commit()
        self.state.opened_recorded = True

    async def _settle(self) -> None:
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

    async def _chase(self) -> None:
        """Follow the open stage's clock until someone acts: remind, overdue, escalate."""
        token = self.state.transitions

        def moved() -> bool:
            return self.state.transitions != token or self.case.status != OPEN or self._roll_over

        clock = self.state.clock
        if clock is None:
            await workflow.wait_condition(moved)
            return
        # A stage entered by an action is planned while the action is recorded (working
        # days take a local activity): read its times only once they are there.
        await workflow.wait_condition(lambda: clock.planned or moved())
        if moved():
            return
        if not clock.announced:
            if not await self._sleep_until(clock.starts_at, moved):
                return
            clock.announced = True
            await self.on_clock_start()
        if clock.remind_at and not clock.reminded:
            if not await self._sleep_until(clock.remind_at, moved):
                return
            await self._remind()
        while clock.due_at and not clock.chain_ended:
            if not await self._sleep_until(clock.next_escalation_at or clock.due_at, moved):
                return
            if not clock.level and await self.on_due():
                return
            await self._escalate()
        await workflow.wait_condition(moved)

    async def _sleep_until(self, deadline: datetime, moved: Callable[[], bool]) -> bool:
        """True when `deadline` arrives with the stage unmoved; False as soon as it moves."""
        remaining = (deadline - workflow.now()).total_seconds()
        if moved():
            return False
        if remaining <= 0:
            return True
        try:
            await workflow.wait_condition(moved, timeout=remaining)
        except TimeoutError:
            return not moved()
        return False

    async def _remind(self) -> None:
        clock = self._clock()
        clock.reminded = True
        self.emit("reminded", SYSTEM_ACTOR, {"to": self.case.owner or f"team:{self._owner_team()}"})
        self.mail("reminder", self._owner_recipients(), team=self._owner_team())
        await self.commit()

    async def _escalate(self) -> None:
        clock = self._clock()
        level = clock.level + 1
        request = EscalationTargetRequest(
            level=level,
            owner=self.case.owner,
            team=None if self.case.owner else self.case.team,
            exclude=self.conflicted(),
        )
        # A short read of the directory: as a local activity it runs inside the task that
        # the due timer fired, one workflow task fewer per escalation. With thousands of
        # cases due at once and a bounded cache, each task saved is a replay saved too.
        if workflow.patched(ESCALATION_TARGET_LOCAL):
            target = await workflow.execute_local_activity(
                "escalation_target",
                request,
                result_type=EscalationTarget,
                start_to_close_timeout=RECORD_TIMEOUT,
            )
        else:
            target = await workflow.execute_activity(
                "escalation_target",
                request,
                result_type=EscalationTarget,
                start_to_close_timeout=RECORD_TIMEOUT,
            )
        self.case.overdue = True
        durations = self._durations()
        if target.email is None:
            clock.chain_ended = True
            self.emit("escalation_chain_ended", SYSTEM_ACTOR, {"level": clock.level})
            await self.commit()
            return
        clock.level = self.case.escalation_level = level
        if durations.escalate_every:
            clock.next_escalation_at = (
                await self.offsets(workflow.now(), [durations.escalate_every])
            )[0]
        else:
            clock.chain_ended = True
        data = {"to": target.email, "level": level, "skipped": target.skipped}
        self.emit("escalated", SYSTEM_ACTOR, data)
        self.mail("escalation", [target.email], level=level)
        await self.commit()

    # ---- transitions, used by `apply` -------------------------------------------------

    def move_to(self, stage: str, *, count: bool = True) -> None:
        """Enter `stage` with a fresh clock; its owner is told once it is recorded."""
        self.case.stage = stage
        self.case.owner = self.owner_of(stage)
        self.case.overdue = False
        self.case.escalation_level = 0
        self.state.clock = Clock(starts_at=workflow.now(), entered_at=workflow.now())
        if count:
            self.state.transitions += 1
        if self.clock_start(stage) is None:
            self.state.clock.announced = True
            self.mail("action_needed", self._owner_recipients(), team=self._owner_team())

    def due_by(self, due_at: datetime, *, starts_at: datetime | None = None) -> None:
        """Restart the stage's clock with a due time an action set (a hearing date, an
        expiry). With `starts_at`, the clock starts then (`on_clock_start`: a notice)."""
        self.state.clock = Clock(
            starts_at=starts_at or workflow.now(),
            due_at=due_at,
            planned=True,
            announced=starts_at is None,
            set_by_action=True,
        )
        self.case.due_at, self.case.overdue, self.case.escalation_level = due_at, False, 0
        self.state.transitions += 1

    def owner_of(self, stage: str) -> str | None:
        party = self.STAGE_OWNER.get(stage)
        if party:
            return self.case.parties.get(party)
        return self.case.assignee

    def close(self, outcome: str, data: dict[str, Any] | None = None) -> None:
        case = self.case
        case.status, case.stage, case.outcome = CLOSED, CLOSED_STAGE, outcome
        case.closed_at = workflow.now()
        case.owner, case.due_at, case.overdue = None, None, False
        self.state.clock = None
        self.state.transitions += 1
        self.emit("closed", SYSTEM_ACTOR, {"outcome": outcome, **(data or {})})
        self.mail("decision", [case.requester], reason=(data or {}).get("reason"))

    def ask_requester(self) -> None:
        """Pause the stage's clock and wait on the requester (policy file: awaiting_info)."""
        self.state.paused_stage = self.case.stage
        self.state.paused_clock = self.state.clock
        self.state.paused_at = workflow.now()
        self.move_to(AWAITING_INFO)

    def resume_after_answer(self) -> None:
        """Back to the stage that asked; its clock moves on by the time spent waiting."""
        stage, paused = self.state.paused_stage, self.state.paused_clock
        assert stage is not None and self.state.paused_at is not None
        waited = workflow.now() - self.state.paused_at
        # Its owner now: the SAC lead may have reassigned it while we waited.
        self.case.stage, self.case.owner = stage, self.owner_of(stage)
        if paused is not None:
            self.state.clock = _shift(paused, waited)
            self.case.due_at = self.state.clock.due_at
            self.case.overdue = paused.level > 0
            self.case.escalation_level = paused.level
        self.state.paused_stage = self.state.paused_clock = self.state.paused_at = None
        self.state.transitions += 1
        self.mail("action_needed", self._owner_recipients(), team=self._owner_team())

    def reassign(self, assignee: str) -> None:
        self.case.assignee = assignee
        self.case.parties["assignee"] = assignee
        if self.STAGE_OWNER.get(self.case.stage) is None:
            self.case.owner = assignee
        self.mail("action_needed", [assignee])

    # ---- records and mail ------------------------------------------------------------------

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
        conflicted = set(self.parties_in_conflict())
        recipients = sorted({t for t in to if t and t not in conflicted})
        if recipients or team:
            self._outbox.append(_Mail(self._key("m"), kind, recipients, team, context))

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
            await self._plan_clock()
            self.case.updated_at = workflow.now()
            events, self._pending = self._pending, []
            # A deep copy: the activity's input is encoded after this coroutine yields.
            record = RecordRequest(case=copy.deepcopy(self.case), events=events)
            outbox, self._outbox = self._outbox, []
            requests = [(self._mail_request(m), m.team) for m in outbox]
            await workflow.execute_activity("record", record, start_to_close_timeout=RECORD_TIMEOUT)
        for request, team in requests:
            self._mail_tasks.append(asyncio.create_task(self._send(request, team)))
        await self._tell_the_case_that_raised_this()

    # ---- linked cases ------------------------------------------------------------------

    async def open_linked(
        self,
        rules: CaseTypeRules,
        *,
        requester: str,
        details: dict[str, Any],
        parties: dict[str, str],
        relation: str,
        back_relation: str,
        follow: bool = False,
    ) -> str:
        """Raise a linked case of `rules.type` as a case of its own that outlives this
        one. With `follow`, it signals this case as it moves (`on_linked_change`)."""
        now = workflow.now()
        plan: LinkedCasePlan = await workflow.execute_activity(
            "prepare_linked_case",
            LinkedCaseRequest(type=rules.type, prefix=rules.prefix, year=now.year),
            result_type=LinkedCasePlan,
            start_to_close_timeout=RECORD_TIMEOUT,
        )
        linked = CaseSnapshot(
            id=plan.case_id,
            type=rules.type,
            status=OPEN,
            stage=rules.stages[0],
            requester=requester,
            opened_at=now,
            updated_at=now,
            team=rules.team,
            details=details,
            links=[Link(self.case.id, back_relation)],
            parties=parties,
            policy_version=plan.policy.version,
            confidential=rules.confidential,
        )
        extra: dict[str, Any] = {"follower": self.case.id} if follow else {}
        await workflow.start_child_workflow(
            rules.workflow,
            CaseInput(linked, plan.policy, CaseState(case=linked, extra=extra)),
            id=plan.case_id,
            task_queue=workflow.info().task_queue,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        self.case.links.append(Link(plan.case_id, relation))
        self.emit("linked", SYSTEM_ACTOR, {"case": plan.case_id, "relation": relation})
        return plan.case_id

    async def _tell_the_case_that_raised_this(self) -> None:
        follower = self.state.extra.get("follower")
        where = f"{self.case.status}:{self.case.stage}"
        if follower and self.state.extra.get("told") != where:
            self.state.extra["told"] = where
            await self._tell(follower)
        # Cases that asked to follow this one later (`follow`), each told once per move.
        later: dict[str, str] = self.state.extra.get("followers", {})
        for other, told in list(later.items()):
            if told != where:
                later[other] = where
                await self._tell(other)

    async def _tell(self, follower: str) -> None:
        news = LinkedCaseNews(
            case_id=self.case.id,
            type=self.case.type,
            status=self.case.status,
            stage=self.case.stage,
            outcome=self.case.outcome,
        )
        try:
            await workflow.get_external_workflow_handle(follower).signal(LINKED_SIGNAL, news)
        except ApplicationError:
            # The case to tell has closed: there is no one left to tell.
            workflow.logger.info("linked case %s has closed", follower)

    async def _send(self, request: MailRequest, team: str | None) -> None:
        if team:
            members = await workflow.execute_activity(
                "team_members",
                TeamMembersRequest(team=team),
                result_type=TeamMembers,
                start_to_close_timeout=RECORD_TIMEOUT,
            )
            # A party in conflict who is in the team (an investigation's perpetrator in
            # SIRT) is not told of the case through its queue.
            members.emails = [m for m in members.emails if m not in self.conflicted()]
            request.to = sorted(set(request.to) | set(members.emails))
        if request.to:
            await workflow.execute_activity(
                "send_mail",
                request,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=MAIL_RETRY,
            )

    # ---- the clock ------------------------------------------------------------------------

    def _clock(self) -> Clock:
        assert self.state.clock is not None
        return self.state.clock

    def _durations(self) -> StageDurations:
        return self.policy.stages.get(self.case.stage) or StageDurations()

    async def _plan_clock(self) -> None:
        clock = self.state.clock
        if clock is None or clock.planned:
            return
        plan = self._clock_plan(self.case.stage, clock.starts_at)
        clock.starts_at, clock.remind_at, clock.due_at = await self._planned(plan)
        clock.planned = True
        self.case.due_at = clock.due_at

    def _clock_plan(self, stage: str, start: datetime) -> ClockPlan:
        """`stage`'s clock under the current policy, counted from `start`."""
        durations = self.policy.stages.get(stage) or StageDurations()
        due = durations.extra.get("lapse") if stage == AWAITING_INFO else None
        return ClockPlan(start, self.clock_start(stage), durations.remind, due or durations.sla)

    async def _planned(self, plan: ClockPlan) -> tuple[datetime, datetime | None, datetime | None]:
        """(starts_at, remind_at, due_at) of a plan."""
        starts_at = plan.start
        if plan.start_after:
            starts_at = (await self.offsets(starts_at, [plan.start_after]))[0]
        wanted = [d for d in (plan.remind, plan.due) if d]
        instants = iter(await self.offsets(starts_at, wanted))
        remind_at = next(instants) if plan.remind else None
        due_at = next(instants) if plan.due else None
        return starts_at, remind_at, due_at

    def _replan(self, clock: Clock, stage: str) -> ClockPlan | None:
        """The plan a policy change re-times `clock` by; None if no policy times it."""
        if not clock.planned or clock.set_by_action:
            return None
        if clock.entered_at is None:
            # Saved before stages kept their start: re-plan from when the clock started.
            plan = self._clock_plan(stage, clock.starts_at)
            plan.start_after = None
            return plan
        return self._clock_plan(stage, clock.entered_at)

    @staticmethod
    def _retime(
        clock: Clock, starts_at: datetime, remind_at: datetime | None, due_at: datetime | None
    ) -> None:
        """New times for a running clock. Not due (any more): escalation starts over when it
        falls due. Already due and escalated: the chain carries on at its level."""
        if not clock.announced:
            clock.starts_at = starts_at
        clock.remind_at, clock.due_at = remind_at, due_at
        if due_at is None or due_at > workflow.now():
            clock.level, clock.chain_ended, clock.next_escalation_at = 0, False, None

    def counts_in_local_time(self) -> bool:
        """Whether working days are judged in the staff's zone and end at its working day's
        end: every case since local time shipped. A case that was running before keeps
        the rules it recorded (UTC dates, the start's time of day) until a policy change
        re-times it (`policy_changed`)."""
        if self.state.local_time is None:
            self.state.local_time = workflow.patched(LOCAL_TIME)
        return self.state.local_time

    async def offsets(
        self, start: datetime, durations: list[str], *, before: bool = False
    ) -> list[datetime]:
        """`start` plus (`before`: less) each duration: ISO ones here, working days by the
        calendar activity."""
        parsed = [parse_duration(d) for d in durations]
        if not any(p.is_working_days for p in parsed):
            if before:
                return [add_months(start, -p.months) - p.elapsed for p in parsed]
            return [add_elapsed(start, p) for p in parsed]
        local = self.counts_in_local_time()
        result: OffsetsResult = await workflow.execute_local_activity(
            "offsets",
            OffsetsRequest(
                start=start,
                durations=durations,
                bank_holidays=self.policy.bank_holidays,
                extra_holidays=self.policy.extra_holidays,
                timezone=self.policy.timezone if local else "",
                working_day_ends=self.policy.working_day_ends,
                before=before,
            ),
            result_type=OffsetsResult,
            start_to_close_timeout=timedelta(seconds=10),
        )
        return result.instants

    def _owner_recipients(self) -> list[str | None]:
        return [self.case.owner]

    def _owner_team(self) -> str | None:
        return None if self.case.owner else self.queue_of(self.case.stage)


def _shift(clock: Clock, by: timedelta) -> Clock:
    def later(t: datetime | None) -> datetime | None:
        return t + by if t else None

    return replace(
        clock,
        starts_at=clock.starts_at + by,
        entered_at=later(clock.entered_at),
        remind_at=later(clock.remind_at),
        due_at=later(clock.due_at),
        next_escalation_at=later(clock.next_escalation_at),
    )
