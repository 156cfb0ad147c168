"""The chase: a stage's service-level clock followed with durable timers.

The owner is reminded at `remind`; at the due time the stage either ends by itself
(its row's `when_due`: a question lapses, a window closes, an exception expires) or
is overdue and escalates: the owner's line manager (a queue's lead) is told, then one
level further up every `escalate_every`, until someone acts or the chain ends. Any
action moves the stage on and the chase starts over on the new stage's clock. Written
once for every case type. Standard library and temporalio only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

from workflows import clock as clocks
from workflows.base import RECORD_TIMEOUT, CaseBase, StateT
from workflows.common import (
    OPEN,
    SYSTEM_ACTOR,
    Clock,
    ClockPlan,
    EscalationTarget,
    EscalationTargetRequest,
    OffsetsRequest,
    OffsetsResult,
)
from workflows.durations import add_elapsed, add_months, parse_duration
from workflows.registry import ESCALATION_TARGET_ACTIVITY, OFFSETS_ACTIVITY

# Patches (`workflow.patched`): each names a change to the commands a case issues.
ESCALATION_TARGET_LOCAL = "escalation-target-local"
# Working days judged in the policy's time zone, due at its working day's end.
LOCAL_TIME = "calendar-local-time"


class Chase(CaseBase[StateT]):
    async def chase(self) -> None:
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
            await self.clock_started()
        if clock.remind_at and not clock.reminded:
            if not await self._sleep_until(clock.remind_at, moved):
                return
            await self._remind()
        while clock.due_at and not clock.chain_ended:
            if not await self._sleep_until(clock.next_escalation_at or clock.due_at, moved):
                return
            if not clock.level and await self.ends_when_due():
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

    def _clock(self) -> Clock:
        assert self.state.clock is not None
        return self.state.clock

    async def _remind(self) -> None:
        clock = self._clock()
        clock.reminded = True
        self.emit("reminded", SYSTEM_ACTOR, {"to": self.case.owner or f"team:{self.owner_team()}"})
        self.mail("reminder", self.owner_recipients(), team=self.owner_team())
        await self.commit()

    async def _escalate(self) -> None:
        clock = self._clock()
        level = clock.level + 1
        request = self.escalation_request(level)
        # A short read of the directory: as a local activity it runs inside the task that
        # the due timer fired, one workflow task fewer per escalation. With thousands of
        # cases due at once and a bounded cache, each task saved is a replay saved too.
        if workflow.patched(ESCALATION_TARGET_LOCAL):
            target = await workflow.execute_local_activity(
                ESCALATION_TARGET_ACTIVITY,
                request,
                result_type=EscalationTarget,
                start_to_close_timeout=RECORD_TIMEOUT,
            )
        else:
            target = await workflow.execute_activity(
                ESCALATION_TARGET_ACTIVITY,
                request,
                result_type=EscalationTarget,
                start_to_close_timeout=RECORD_TIMEOUT,
            )
        self.case.overdue = True
        every = clocks.durations(self.policy, self.case.stage).escalate_every
        if target.email is None:
            clock.chain_ended = True
            self.emit("escalation_chain_ended", SYSTEM_ACTOR, {"level": clock.level})
            await self.commit()
            return
        clock.level = self.case.escalation_level = level
        if every:
            clock.next_escalation_at = (await self.offsets(workflow.now(), [every]))[0]
        else:
            clock.chain_ended = True
        clock.escalated_to = target.email
        data = {"to": target.email, "level": level, "skipped": target.skipped}
        self.emit("escalated", SYSTEM_ACTOR, data)
        self.mail("escalation", [target.email], level=level)
        await self.commit()

    def escalation_request(self, level: int) -> EscalationTargetRequest:
        """Whom the `level`-th escalation of the open stage goes to, as the directory asks."""
        return EscalationTargetRequest(
            level=level,
            owner=self.case.owner,
            team=None if self.case.owner else self.case.team,
            exclude=self.never_escalated_to(),
        )

    # ---- planning a stage's clock ---------------------------------------------------------

    async def plan_clock(self) -> None:
        """Plan the open stage's clock if it is new (before its entry is recorded)."""
        clock = self.state.clock
        if clock is None or clock.planned:
            return
        plan = clocks.plan(self.policy, self.RULES, self.case.stage, clock.starts_at)
        clock.starts_at, clock.remind_at, clock.due_at = await self.planned(plan)
        clock.planned = True
        self.case.due_at = clock.due_at

    async def planned(self, plan: ClockPlan) -> tuple[datetime, datetime | None, datetime | None]:
        """(starts_at, remind_at, due_at) of a plan, counted on the case's calendar."""
        starts_at = plan.start
        if plan.start_after:
            starts_at = (await self.offsets(starts_at, [plan.start_after]))[0]
        wanted = [d for d in (plan.remind, plan.due) if d]
        instants = iter(await self.offsets(starts_at, wanted))
        remind_at = next(instants) if plan.remind else None
        due_at = next(instants) if plan.due else None
        return starts_at, remind_at, due_at

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
            OFFSETS_ACTIVITY,
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
