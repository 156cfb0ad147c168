"""What every case workflow shares: human actions as validated updates, the moves
between stages, and the life of a case from opening to closing.

A case type's workflow names its table (`RULES`: the stage rows, the actions and who
may take them), has a method per action, marked `@action("name")`, that says what the
action does, and a typed state of its own (a `CaseState` subclass). The engine does
the rest, written once: the validator refuses what the table does not allow
(`check_action`) before anything is written; the clock of each stage is chased
(`workflows.chase`); every change is recorded once and its mail sent (`Outbox`);
linked cases are raised and told (`Links`). Deterministic: no I/O, no clock but
Temporal's, and activities are called by name (`workflows.registry`), so no activity
code (nor SQLAlchemy) is loaded into the sandbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows import clock as clocks
from workflows.base import StateT
from workflows.chase import Chase
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
    Clock,
    ClockPlan,
    EventIn,
    PolicyChange,
    PolicyChangeResult,
    PolicyPreview,
)
from workflows.links import Links
from workflows.outbox import Outbox
from workflows.registry import (
    ACT_UPDATE,
    OPENED_UPDATE,
    POLICY_PREVIEW_QUERY,
    POLICY_UPDATE,
    SNAPSHOT_QUERY,
)
from workflows.rules import (
    ASSIGNEE,
    AWAITING_INFO_STAGE,
    ESCALATE,
    QUEUE,
    ActionRule,
    Refusal,
    assignment_refusal,
    check_action,
    clean_fields,
)

LAPSED = "lapsed"


@dataclass
class Act:
    """One allowed action as its handler sees it: who, the cleaned fields, and the action's
    own audit event (to note what the handler decided)."""

    rule: ActionRule
    actor: Actor
    fields: dict[str, Any]
    event: EventIn


Handler = Callable[[Any, Act], Awaitable[None]]
H = TypeVar("H", bound=Handler)


def action(*names: str) -> Callable[[H], H]:
    """Mark a workflow method as what the actions `names` of its table do."""

    def mark(method: H) -> H:
        method.__case_actions__ = names  # type: ignore[attr-defined]
        return method

    return mark


class CaseWorkflow(Outbox[StateT], Chase[StateT], Links[StateT]):
    """Base of every case workflow. A type adds `@workflow.defn`, a `run`, and a method
    per action of its table (`@action`)."""

    _handlers: dict[str, str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for name, member in vars(klass).items():
                for acted in getattr(member, "__case_actions__", ()):
                    handlers[acted] = name
        cls._handlers = handlers
        rules = getattr(cls, "RULES", None)
        if rules is None:
            return
        # The table is the process: every action it names is handled, every ending exists.
        missing = [a.name for a in rules.actions if a.name not in handlers]
        endings = [r.when_due for r in rules.rows if r.when_due != ESCALATE]
        missing += [e for e in endings if not callable(getattr(cls, e, None))]
        if missing:
            raise TypeError(f"{cls.__name__} handles nothing for: {', '.join(missing)}")

    def __init__(self, inp: CaseInput, state: StateT) -> None:
        self.policy = inp.policy
        self.state = state
        self.state.adopt_legacy()
        self.init_outbox()
        self._roll_over = False

    # ---- what a case type may fill in ------------------------------------------------

    def check(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        """Rules beyond the table (limits, dates): raise Refusal to refuse."""

    def first_stage(self) -> str:
        return self.RULES.stages[0]

    def opening(self) -> None:
        """The case is opening, its `opened` event emitted: emit what the opening implies
        (e.g. a referral flagged for criminal consideration). Recorded with the opening."""

    async def clock_started(self) -> None:
        """A clock that starts after its stage began has started (its row's
        `clock_starts`): tell whoever it concerns."""

    # ---- who ----------------------------------------------------------------------------

    def owner_of(self, stage: str) -> str | None:
        """Whom `stage` waits on (an email), or None for a queue (its row's `owner`)."""
        row = self.RULES.stage(stage)
        if row.party:
            return self.case.parties.get(row.party)
        return None if row.owner == QUEUE else self.case.assignee

    def queue_of(self, stage: str) -> str | None:
        """The queue told when `stage` waits on one: the row's (a team's leads, for their
        decision) or the case's team. Its escalations go to the case team's lead."""
        return self.RULES.stage(stage).queue or self.case.team

    def owner_recipients(self) -> list[str | None]:
        return [self.case.owner]

    def owner_team(self) -> str | None:
        return None if self.case.owner else self.queue_of(self.case.stage)

    def people_in_conflict(self) -> list[str]:
        """Whoever `RULES.parties_in_conflict` names on this case now (an alleged
        perpetrator, a referral's subject): never mailed, never escalated to, never told
        through a queue."""
        named = (self.case.parties.get(party) for party in self.RULES.parties_in_conflict)
        return [email for email in named if email]

    def never_escalated_to(self) -> list[str]:
        return self.people_in_conflict()

    # ---- handlers ------------------------------------------------------------------

    @workflow.query(name=SNAPSHOT_QUERY)
    def snapshot(self) -> CaseSnapshot:
        return self.case

    @workflow.update(name=OPENED_UPDATE)
    async def opened(self) -> CaseSnapshot:
        await workflow.wait_condition(lambda: self.state.opened_recorded)
        return self.case

    @workflow.update(name=ACT_UPDATE)
    async def act(self, request: ActionRequest) -> CaseSnapshot:
        rule = self.RULES.action(request.action, self.case.stage)
        fields = clean_fields(rule.fields, request.fields)
        event = self.emit(rule.name, request.actor.email, dict(fields))
        handler = getattr(self, self._handlers[rule.name])
        await handler(Act(rule, request.actor, fields, event))
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
            fields = clean_fields(rule.fields, request.fields)
            # Only a person in the directory with the stage's role, not a party to it.
            refused = assignment_refusal(self.RULES, self.case, rule, fields, request.assignee)
            if refused is not None:
                raise refused
            self.check(rule, request.actor, fields)
        except Refusal as refusal:
            raise ApplicationError(refusal.message, refusal.field, type=refusal.code) from None

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
            planned = await self.planned(plan)
            if self.state.clock is clock and self.case.status == OPEN:
                clocks.retime(clock, *planned, workflow.now())
                self.case.due_at = clock.due_at
                if not clock.level:
                    self.case.overdue, self.case.escalation_level = False, 0
                self.state.transitions += 1  # the chase follows the new times
        stage = self.state.paused_stage
        if paused is not None and stage and (plan := self._replan(paused, stage)) is not None:
            planned = await self.planned(plan)
            if self.state.paused_clock is paused:
                clocks.retime(paused, *planned, workflow.now())
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
        clock = self.state.clock
        plan = clocks.replan(policy, self.RULES, clock, self.case.stage) if clock else None
        return PolicyPreview(
            self.case.id, self.case.stage, self.policy.version, self.case.due_at, plan
        )

    def _replan(self, clock: Clock, stage: str) -> ClockPlan | None:
        return clocks.replan(self.policy, self.RULES, clock, stage)

    # ---- the life of a case ----------------------------------------------------------

    async def run_case(self) -> CaseSnapshot:
        """Open the case, then follow each stage's clock until it closes; a long life goes
        on in a fresh run (continue-as-new), its state carried."""
        if not self.state.opened_recorded:
            await self._open()
        while self.case.status == OPEN:
            if self._roll_over or workflow.info().is_continue_as_new_suggested():
                await self.settle()
                workflow.continue_as_new(CaseInput(self.case, self.policy, self.state))
            await self.chase()
        await self.settle()
        return self.case

    async def _open(self) -> None:
        # The case opens when Temporal starts it: the clock and the record agree.
        self.case.opened_at = workflow.now()
        self.move_to(self.first_stage(), count=False)
        self.emit("opened", self.case.requester, {"details": self.case.details})
        for link in self.case.links:
            self.emit("linked", SYSTEM_ACTOR, {"case": link.id, "relation": link.relation})
        self.opening()
        self.mail("opened", [self.case.requester])
        await self.commit()
        self.state.opened_recorded = True

    async def ends_when_due(self) -> bool:
        """The open stage fell due: its row says whether it ends then (the method it
        names) or escalates (False)."""
        ending = self.RULES.stage(self.case.stage).when_due
        if ending == ESCALATE:
            return False
        getattr(self, ending)()
        await self.commit()
        return True

    def lapse(self) -> None:
        """A question to the requester was never answered (policy file: `lapse`)."""
        self.close(LAPSED, {"reason": "no answer from the requester"})

    # ---- transitions, used by the actions ----------------------------------------------

    def move_to(self, stage: str, *, count: bool = True) -> None:
        """Enter `stage` with a fresh clock; its owner is told once it is recorded."""
        self.case.stage = stage
        self.case.owner = self.owner_of(stage)
        self.case.overdue = False
        self.case.escalation_level = 0
        self.state.clock = Clock(starts_at=workflow.now(), entered_at=workflow.now())
        if count:
            self.state.transitions += 1
        if clocks.clock_start(self.policy, self.RULES, stage) is None:
            self.state.clock.announced = True
            self.mail("action_needed", self.owner_recipients(), team=self.owner_team())

    def due_by(self, due_at: datetime, *, starts_at: datetime | None = None) -> None:
        """Restart the stage's clock with a due time an action set (a hearing date, an
        expiry). With `starts_at`, the clock starts then (`clock_started`: a notice)."""
        self.state.clock = Clock(
            starts_at=starts_at or workflow.now(),
            due_at=due_at,
            planned=True,
            announced=starts_at is None,
            set_by_action=True,
        )
        self.case.due_at, self.case.overdue, self.case.escalation_level = due_at, False, 0
        self.state.transitions += 1

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
        self.move_to(AWAITING_INFO_STAGE.name)

    def resume_after_answer(self) -> None:
        """Back to the stage that asked; its clock moves on by the time spent waiting."""
        stage, paused = self.state.paused_stage, self.state.paused_clock
        assert stage is not None and self.state.paused_at is not None
        waited = workflow.now() - self.state.paused_at
        # Its owner now: the SAC lead may have reassigned it while we waited.
        self.case.stage, self.case.owner = stage, self.owner_of(stage)
        if paused is not None:
            self.state.clock = clocks.shift(paused, waited)
            self.case.due_at = self.state.clock.due_at
            self.case.overdue = paused.level > 0
            self.case.escalation_level = paused.level
        self.state.paused_stage = self.state.paused_clock = self.state.paused_at = None
        self.state.transitions += 1
        self.mail("action_needed", self.owner_recipients(), team=self.owner_team())

    def reassign(self, assignee: str) -> None:
        """The case is now `assignee`'s: where no party owns the stage, so is the stage."""
        self.case.assignee = assignee
        self.case.parties["assignee"] = assignee
        if self.RULES.stage(self.case.stage).owner in (ASSIGNEE, QUEUE):
            self.case.owner = assignee
        self.mail("action_needed", [assignee])

    # ---- the actions every case type has (API.md) ---------------------------------------

    @action("comment")
    async def comment(self, act: Act) -> None:
        """A note on the record: the event is all it does."""

    @action("reassign")
    async def reassign_case(self, act: Act) -> None:
        self.reassign(act.fields["assignee"])
