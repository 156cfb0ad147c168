"""An Individual Professional Account, from request to retirement (policy 5.1, 3.2).

The requester's manager endorses, the Security Advice Centre approves, and the
account then stays `active` with a yearly attestation that its holder is
chased for like any other stage (3.2). Who may do what is `ipa_types.RULES`.

An account used from a personal device needs an approved policy exception (5.1):
on approval the request follows one, the exception its details name if that is an
open exception of the same requester, else one it raises as a linked case. It waits
in `awaiting_exception` until that is approved (then `active`) or closes (then
closed `rejected`); if the exception is revoked or expires while the account is
active, the account is closed `revoked` with it.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows import exception_types as pex
from workflows import ipa_types as ipa
from workflows.common import (
    CLOSED,
    SYSTEM_ACTOR,
    Actor,
    CaseInput,
    CaseRead,
    CaseReadRequest,
    CaseSnapshot,
    EventIn,
    Link,
    LinkedCaseNews,
)
from workflows.engine import RECORD_TIMEOUT, CaseWorkflow
from workflows.registry import FOLLOW_SIGNAL
from workflows.rules import CONFLICT, ActionRule, Refusal

# The policy exception an IPA on a personal device waits on, in `CaseState.extra`.
EXCEPTION_CASE = "exception_case"
# The patch under which an approval raises or follows that exception (README, "Changing
# a workflow safely"): cases approved before it replay the old path, which only waits.
COVER_WITH_AN_EXCEPTION = "ipa-cover-with-an-exception"


@workflow.defn(name=ipa.RULES.workflow)
class IpaApprovalWorkflow(CaseWorkflow):
    RULES = ipa.RULES
    STAGE_OWNER = ipa.STAGE_OWNER

    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        super().__init__(inp)
        # While an approval reads or raises its policy exception: nothing else meanwhile.
        self._covering = False

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseSnapshot:
        return await self.run_case()

    def first_stage(self) -> str:
        # With no line manager to endorse it, the request goes straight to the SAC.
        if self.case.parties.get("requester_manager"):
            return ipa.MANAGER_ENDORSEMENT
        return ipa.SAC_REVIEW

    def check(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        if self._covering:
            raise Refusal(CONFLICT, "case: its policy exception is being raised, try again")

    def apply(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        match rule.name:
            case "endorse":
                self.move_to(ipa.SAC_REVIEW)
                self.mail("progress", [self.case.requester], progress="endorsed")
            case "decline":
                self.close(ipa.DECLINED, fields)
            case "approve":
                # A personal device needs an approved policy exception (5.1): `after_apply`.
                if self.case.details.get("device") == "personal":
                    self._covering = True
                else:
                    self._activate()
            case "reject":
                self.close(ipa.REJECTED, fields)
            case "request_info":
                self.ask_requester()
            case "provide_info":
                self.resume_after_answer()
            case "attest":
                self.move_to(ipa.ACTIVE)
                self.state.extra["last_attested_at"] = workflow.now().isoformat()
                self._roll_over = True  # a fresh run per year keeps the history short
            case "revoke":
                self.close(ipa.REVOKED, fields)
            case "retire":
                self.close(ipa.RETIRED, fields)
            case "withdraw":
                self.close(ipa.WITHDRAWN, fields)
            case "reassign":
                self.reassign(fields["assignee"])
            case "comment":
                pass

    def _activate(self) -> None:
        self.move_to(ipa.ACTIVE)
        self.mail("progress", [self.case.requester], progress="approved")

    async def after_apply(
        self, rule: ActionRule, actor: Actor, fields: dict[str, Any], event: EventIn
    ) -> None:
        if not self._covering:
            return
        try:
            if workflow.patched(COVER_WITH_AN_EXCEPTION):
                await self._cover_with_an_exception(event)
            else:  # approved before IPAs raised their exception: waits as it did then
                self.move_to(ipa.AWAITING_EXCEPTION)
                self.mail("progress", [self.case.requester], progress="waiting for an exception")
        finally:
            self._covering = False

    async def _cover_with_an_exception(self, event: EventIn) -> None:
        """Policy 5.1: wait on a policy exception, the one the details name if it may
        cover this IPA, else one raised now; if it is approved already, go active."""
        named = self.case.details.get("exception_case")
        exception = await self._follow_named(named, event) if named else None
        if exception is None:
            exception_id = await self.open_linked(
                pex.RULES,
                requester=self.case.requester,
                details=ipa.exception_request(self.case),
                parties={"requester": self.case.requester},
                relation=ipa.EXCEPTION,
                back_relation=ipa.EXCEPTION_FOR,
                follow=True,
            )
        else:
            exception_id = exception.id
        self.state.extra[EXCEPTION_CASE] = event.data[EXCEPTION_CASE] = exception_id
        if exception is not None and exception.stage == pex.ACTIVE:
            self._activate()
        else:
            self.move_to(ipa.AWAITING_EXCEPTION)
            self.mail("progress", [self.case.requester], progress="waiting for an exception")

    async def _follow_named(self, name: str, event: EventIn) -> CaseSnapshot | None:
        """The exception the details name, now followed, if it may cover this IPA; else
        None, with the reason noted on the approval's event."""
        read: CaseRead = await workflow.execute_activity(
            "read_case",
            CaseReadRequest(name),
            result_type=CaseRead,
            start_to_close_timeout=RECORD_TIMEOUT,
        )
        why_not = ipa.exception_unusable(read.case, name, self.case.requester)
        if why_not is None:
            try:
                handle = workflow.get_external_workflow_handle(name)
                await handle.signal(FOLLOW_SIGNAL, Link(self.case.id, ipa.EXCEPTION_FOR))
            except ApplicationError:
                why_not = f"{name}: closed"
        if why_not is not None or read.case is None:
            event.data["exception_case_not_used"] = why_not
            return None
        self.case.links.append(Link(name, ipa.EXCEPTION))
        self.emit("linked", SYSTEM_ACTOR, {"case": name, "relation": ipa.EXCEPTION})
        return read.case

    def on_linked_change(self, news: LinkedCaseNews) -> None:
        if news.case_id != self.state.extra.get(EXCEPTION_CASE):
            return
        if self.case.stage == ipa.AWAITING_EXCEPTION and news.stage == pex.ACTIVE:
            self._activate()
        elif news.status == CLOSED and self.case.stage == ipa.AWAITING_EXCEPTION:
            reason = ipa.exception_ended(news.case_id, news.outcome)
            self.close(ipa.REJECTED, {"reason": reason, "policy": "5.1"})
        elif news.status == CLOSED and self.case.stage == ipa.ACTIVE:
            # No account on a personal device without its exception: revoked with it.
            reason = ipa.exception_ended(news.case_id, news.outcome)
            self.close(ipa.REVOKED, {"reason": reason, "policy": "5.1"})

    def clock_start(self, stage: str) -> str | None:
        if stage == ipa.ACTIVE:
            return self.policy.stages[ipa.ACTIVE].extra["attest_every"]
        return None

    async def on_clock_start(self) -> None:
        self.emit("attestation_requested", SYSTEM_ACTOR, {"policy": "3.2"})
        self.mail("attestation_due", [self.case.requester])
        await self.commit()
