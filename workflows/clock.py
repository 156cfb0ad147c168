"""A stage's service-level clock as pure functions of the policy and the stage's row.

Which durations a stage's clock is planned by (`plan`), how a plan is re-made under a
new policy (`replan`), how a paused clock moves on (`shift`) and how a running one is
re-timed (`retime`). Counting the durations themselves needs the working-day calendar,
which the workflow asks for (`Chase.offsets`). Standard library only.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from workflows.common import CasePolicy, Clock, ClockPlan, StageDurations
from workflows.rules import AWAITING_INFO_STAGE, CaseTypeRules


def durations(policy: CasePolicy, stage: str) -> StageDurations:
    """`stage`'s section of the policy file (empty if it has none)."""
    return policy.stages.get(stage) or StageDurations()


def clock_start(policy: CasePolicy, rules: CaseTypeRules, stage: str) -> str | None:
    """How long after `stage` begins its clock starts (the policy duration its row names:
    a year for an attestation); None when it starts at once."""
    key = rules.stage(stage).clock_starts if stage in rules.stages else None
    return durations(policy, stage).extra[key] if key else None


def plan(policy: CasePolicy, rules: CaseTypeRules, stage: str, start: datetime) -> ClockPlan:
    """`stage`'s clock under `policy`, counted from `start`: a question waiting on the
    requester is due when it lapses, any other stage at its `sla`."""
    stage_durations = durations(policy, stage)
    lapse = stage_durations.extra.get("lapse") if stage == AWAITING_INFO_STAGE.name else None
    return ClockPlan(
        start,
        clock_start(policy, rules, stage),
        stage_durations.remind,
        lapse or stage_durations.sla,
    )


def replan(policy: CasePolicy, rules: CaseTypeRules, clock: Clock, stage: str) -> ClockPlan | None:
    """The plan a policy change re-times `clock` by; None if no policy times it (an action
    set its due time, or it is not planned yet)."""
    if not clock.planned or clock.set_by_action:
        return None
    if clock.entered_at is None:
        # Saved before stages kept their start: re-plan from when the clock started.
        again = plan(policy, rules, stage, clock.starts_at)
        again.start_after = None
        return again
    return plan(policy, rules, stage, clock.entered_at)


def retime(
    clock: Clock,
    starts_at: datetime,
    remind_at: datetime | None,
    due_at: datetime | None,
    now: datetime,
) -> None:
    """New times for a running clock. Not due (any more): escalation starts over when it
    falls due. Already due and escalated: the chain carries on at its level."""
    if not clock.announced:
        clock.starts_at = starts_at
    clock.remind_at, clock.due_at = remind_at, due_at
    if due_at is None or due_at > now:
        clock.level, clock.chain_ended, clock.next_escalation_at = 0, False, None


def shift(clock: Clock, by: timedelta) -> Clock:
    """`clock` moved on by `by` (the time a question waited on the requester)."""

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
