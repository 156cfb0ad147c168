"""A security policy exception, from triage to its expiry (policy 5.2).

The Security Advice Centre triages it (or asks the requester), an officer assesses
the risk, and a SAC lead who did not assess it decides. An approved exception is
`active` until it expires `duration_days` after approval: the stage's due time is
the expiry, its clock starts with a notice to the requester `expiry_notice` (policy
file) before it, and when due it closes as `expired` rather than escalate. A SAC
lead may extend it, at most twice and never beyond 365 days from approval. Who may
do what is `exception_types.RULES`.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from temporalio import workflow

from workflows import exception_types as pex
from workflows.common import SYSTEM_ACTOR, Actor, CaseInput, CaseSnapshot, EventIn
from workflows.durations import add_months, parse_duration
from workflows.engine import CaseWorkflow
from workflows.rules import ActionRule

# What an active exception carries in `CaseState.extra`: ISO instants and a count.
APPROVED_AT = "approved_at"
EXPIRES_AT = "expires_at"
EXTENSIONS = "extensions"


@workflow.defn(name=pex.RULES.workflow)
class PolicyExceptionWorkflow(CaseWorkflow):
    RULES = pex.RULES
    STAGE_OWNER = pex.STAGE_OWNER

    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        super().__init__(inp)

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseSnapshot:
        return await self.run_case()

    def owner_of(self, stage: str) -> str | None:
        if stage == pex.DECISION:
            # The SAC leads' queue, not whoever the case was assigned to until now.
            return None
        return super().owner_of(stage)

    def queue_of(self, stage: str) -> str | None:
        return pex.DECISION_QUEUE if stage == pex.DECISION else super().queue_of(stage)

    def conflicted(self) -> list[str]:
        return [p for p in (self.case.parties.get(n) for n in pex.DECIDERS_NOT) if p]

    def check(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        if rule.name == "extend":
            refusal = pex.extension_refusal(
                extensions=self.state.extra[EXTENSIONS],
                approved_at=self._instant(APPROVED_AT),
                expires_at=self._instant(EXPIRES_AT),
                days=fields["days"],
            )
            if refusal is not None:
                raise refusal

    def apply(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        match rule.name:
            case "accept":
                self.move_to(pex.RISK_ASSESSMENT)
            case "reject":
                self.close(pex.REJECTED, fields)
            case "request_info":
                self.ask_requester()
            case "provide_info":
                self.resume_after_answer()
            case "submit_assessment":
                self.case.parties["assessor"] = actor.email
                self.move_to(pex.DECISION)
            case "approve":
                now = workflow.now()
                self.state.extra[APPROVED_AT] = now.isoformat()
                self.state.extra[EXTENSIONS] = 0
                self.move_to(pex.ACTIVE)
                self._expire_at(now + timedelta(days=self.case.details["duration_days"]))
                self.mail("progress", [self.case.requester], progress="approved")
            case "extend":
                self.state.extra[EXTENSIONS] += 1
                self._expire_at(self._instant(EXPIRES_AT) + timedelta(days=fields["days"]))
                self.mail("progress", [self.case.requester], progress="extended")
            case "revoke":
                self.close(pex.REVOKED, fields)
            case "withdraw":
                self.close(pex.WITHDRAWN, fields)
            case "reassign":
                self.reassign(fields["assignee"])
            case "comment":
                pass

    async def after_apply(
        self, rule: ActionRule, actor: Actor, fields: dict[str, Any], event: EventIn
    ) -> None:
        if rule.name in ("approve", "extend"):
            expiry = self._instant(EXPIRES_AT)
            event.data[EXPIRES_AT] = expiry.isoformat()
            notice_at = await self._notice_before(expiry)
            # Unless it was revoked or extended again while the calendar was read.
            if self.case.stage == pex.ACTIVE and self._instant(EXPIRES_AT) == expiry:
                self.due_by(expiry, starts_at=notice_at)

    def clock_start(self, stage: str) -> str | None:
        if stage == pex.ACTIVE:
            # Not on approval: the clock starts with the expiry notice (`after_apply`).
            return self.policy.stages[pex.ACTIVE].extra["expiry_notice"]
        return None

    async def on_clock_start(self) -> None:
        expiry = self._instant(EXPIRES_AT)
        self.emit("expiry_notice", SYSTEM_ACTOR, {EXPIRES_AT: expiry.isoformat(), "policy": "5.2"})
        self.mail(
            "action_needed",
            [self.case.requester],
            reason="the policy exception expires then. If it is still needed, ask the "
            "Security Advice Centre to extend it before it does (policy 5.2).",
        )
        await self.commit()

    async def on_due(self) -> bool:
        if self.case.stage == pex.ACTIVE:
            expiry = self._instant(EXPIRES_AT)
            self.close(
                pex.EXPIRED,
                {"reason": f"it expired on {expiry:%Y-%m-%d}", "policy": "5.2"},
            )
            await self.commit()
            return True
        return await super().on_due()

    # ---- the expiry ------------------------------------------------------------------

    def _instant(self, key: str) -> datetime:
        return datetime.fromisoformat(self.state.extra[key])

    def _expire_at(self, expiry: datetime) -> None:
        """Due at `expiry`; its notice is set once the calendar is read (`after_apply`)."""
        self.state.extra[EXPIRES_AT] = expiry.isoformat()
        self.due_by(expiry)

    async def _notice_before(self, expiry: datetime) -> datetime:
        """When the requester is told: the policy's `expiry_notice` before `expiry`."""
        text = self.policy.stages[pex.ACTIVE].extra["expiry_notice"]
        notice = parse_duration(text)
        if notice.working_days is None:
            return add_months(expiry, -notice.months) - notice.elapsed
        if not notice.working_days:
            return expiry
        if self.counts_in_local_time():
            return (await self.offsets(expiry, [text], before=True))[0]
        return await self._notice_before_by_utc_dates(expiry, notice.working_days)

    async def _notice_before_by_utc_dates(self, expiry: datetime, n: int) -> datetime:
        """The notice as cases running before local time count it, commands and all: the
        working days of a span sure to hold n of them before the expiry's UTC date, listed
        forward, then n counted back, at the expiry's time of day."""
        expiry = expiry.astimezone(UTC)
        span = 2 * n + 10
        start = datetime.combine(expiry.date() - timedelta(days=span), time(0), UTC)
        days = await self.offsets(start, [f"{k}wd" for k in range(span + 1)])
        earlier = [d.date() for d in days if d.date() < expiry.date()]
        return datetime.combine(earlier[-n], expiry.timetz())
