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
from workflows.common import SYSTEM_ACTOR, Actor, CaseSnapshot
from workflows.durations import add_months, parse_duration
from workflows.engine import Act, CaseWorkflow, action
from workflows.exception_types import ExceptionInput, ExceptionState
from workflows.rules import ActionRule


@workflow.defn(name=pex.RULES.workflow)
class PolicyExceptionWorkflow(CaseWorkflow[ExceptionState]):
    RULES = pex.RULES

    @workflow.init
    def __init__(self, inp: ExceptionInput) -> None:
        super().__init__(inp, inp.state or ExceptionState(case=inp.case))

    @workflow.run
    async def run(self, inp: ExceptionInput) -> CaseSnapshot:
        return await self.run_case()

    def never_escalated_to(self) -> list[str]:
        # Four eyes: whoever assessed it, or asked for it, is not told a decision waits.
        return [p for p in (self.case.parties.get(n) for n in pex.DECIDERS_NOT) if p]

    def check(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        if rule.name == "extend":
            assert self.state.approved_at is not None and self.state.expires_at is not None
            refusal = pex.extension_refusal(
                extensions=self.state.extensions,
                approved_at=self.state.approved_at,
                expires_at=self.state.expires_at,
                days=fields["days"],
            )
            if refusal is not None:
                raise refusal

    # ---- triage and the risk assessment ----------------------------------------------------

    @action("accept")
    async def accept(self, act: Act) -> None:
        self.move_to(pex.RISK_ASSESSMENT)

    @action("reject")
    async def reject(self, act: Act) -> None:
        self.close(pex.REJECTED, act.fields)

    @action("request_info")
    async def request_info(self, act: Act) -> None:
        self.ask_requester()

    @action("provide_info")
    async def provide_info(self, act: Act) -> None:
        self.resume_after_answer()

    @action("submit_assessment")
    async def submit_assessment(self, act: Act) -> None:
        self.case.parties["assessor"] = act.actor.email
        self.move_to(pex.DECISION)

    @action("withdraw")
    async def withdraw(self, act: Act) -> None:
        self.close(pex.WITHDRAWN, act.fields)

    # ---- the decision (a SAC lead who did not assess it) and the exception in force ----------

    @action("approve")
    async def approve(self, act: Act) -> None:
        now = workflow.now()
        self.state.approved_at = now
        self.state.extensions = 0
        self.move_to(pex.ACTIVE)
        self._expire_at(now + timedelta(days=self.case.details["duration_days"]))
        self.mail("progress", [self.case.requester], progress="approved")
        await self._give_notice(act)

    @action("extend")
    async def extend(self, act: Act) -> None:
        self.state.extensions += 1
        self._expire_at(self._expiry() + timedelta(days=act.fields["days"]))
        self.mail("progress", [self.case.requester], progress="extended")
        await self._give_notice(act)

    @action("revoke")
    async def revoke(self, act: Act) -> None:
        self.close(pex.REVOKED, act.fields)

    async def clock_started(self) -> None:
        expiry = self._expiry()
        self.emit(
            "expiry_notice", SYSTEM_ACTOR, {"expires_at": expiry.isoformat(), "policy": "5.2"}
        )
        self.mail(
            "action_needed",
            [self.case.requester],
            reason="the policy exception expires then. If it is still needed, ask the "
            "Security Advice Centre to extend it before it does (policy 5.2).",
        )
        await self.commit()

    def expire(self) -> None:
        """The active stage fell due: the exception has expired."""
        expiry = self._expiry()
        self.close(pex.EXPIRED, {"reason": f"it expired on {expiry:%Y-%m-%d}", "policy": "5.2"})

    # ---- the expiry ------------------------------------------------------------------

    def _expiry(self) -> datetime:
        assert self.state.expires_at is not None
        return self.state.expires_at

    def _expire_at(self, expiry: datetime) -> None:
        """Due at `expiry`; its notice is set once the calendar is read (`_give_notice`)."""
        self.state.expires_at = expiry
        self.due_by(expiry)

    async def _give_notice(self, act: Act) -> None:
        """The clock starts with the requester's notice, `expiry_notice` before expiry."""
        expiry = self._expiry()
        act.event.data["expires_at"] = expiry.isoformat()
        notice_at = await self._notice_before(expiry)
        # Unless it was revoked or extended again while the calendar was read.
        if self.case.stage == pex.ACTIVE and self.state.expires_at == expiry:
            self.due_by(expiry, starts_at=notice_at)

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
