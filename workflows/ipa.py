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
from workflows.base import RECORD_TIMEOUT
from workflows.common import (
    CLOSED,
    SYSTEM_ACTOR,
    Actor,
    CaseRead,
    CaseReadRequest,
    CaseSnapshot,
    EventIn,
    Link,
    LinkedCaseNews,
)
from workflows.engine import Act, CaseWorkflow, action
from workflows.ipa_types import IpaInput, IpaState
from workflows.registry import FOLLOW_SIGNAL, READ_CASE_ACTIVITY
from workflows.rules import CONFLICT, ActionRule, Refusal

# The patch under which an approval raises or follows that exception (README, "Changing
# a workflow safely"): cases approved before it replay the old path, which only waits.
COVER_WITH_AN_EXCEPTION = "ipa-cover-with-an-exception"


@workflow.defn(name=ipa.RULES.workflow)
class IpaApprovalWorkflow(CaseWorkflow[IpaState]):
    RULES = ipa.RULES

    @workflow.init
    def __init__(self, inp: IpaInput) -> None:
        super().__init__(inp, inp.state or IpaState(case=inp.case))
        # While an approval reads or raises its policy exception: nothing else meanwhile.
        self._covering = False

    @workflow.run
    async def run(self, inp: IpaInput) -> CaseSnapshot:
        return await self.run_case()

    def first_stage(self) -> str:
        # With no line manager to endorse it, the request goes straight to the SAC.
        if self.case.parties.get("requester_manager"):
            return ipa.MANAGER_ENDORSEMENT
        return ipa.SAC_REVIEW

    def check(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        if self._covering:
            raise Refusal(CONFLICT, "case: its policy exception is being raised, try again")

    # ---- the manager endorses (5.1) ----------------------------------------------------

    @action("endorse")
    async def endorse(self, act: Act) -> None:
        self.move_to(ipa.SAC_REVIEW)
        self.mail("progress", [self.case.requester], progress="endorsed")

    @action("decline")
    async def decline(self, act: Act) -> None:
        self.close(ipa.DECLINED, act.fields)

    # ---- the Security Advice Centre reviews ----------------------------------------------

    @action("approve")
    async def approve(self, act: Act) -> None:
        # A personal device needs an approved policy exception (5.1).
        if self.case.details.get("device") != "personal":
            self._activate()
            return
        self._covering = True
        try:
            if workflow.patched(COVER_WITH_AN_EXCEPTION):
                await self._cover_with_an_exception(act.event)
            else:  # approved before IPAs raised their exception: waits as it did then
                self.move_to(ipa.AWAITING_EXCEPTION)
                self.mail("progress", [self.case.requester], progress="waiting for an exception")
        finally:
            self._covering = False

    @action("reject")
    async def reject(self, act: Act) -> None:
        self.close(ipa.REJECTED, act.fields)

    @action("request_info")
    async def request_info(self, act: Act) -> None:
        self.ask_requester()

    @action("provide_info")
    async def provide_info(self, act: Act) -> None:
        self.resume_after_answer()

    @action("withdraw")
    async def withdraw(self, act: Act) -> None:
        self.close(ipa.WITHDRAWN, act.fields)

    # ---- a personal device: waiting on a policy exception (5.1) ---------------------------

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
        self.state.exception_case = event.data["exception_case"] = exception_id
        if exception is not None and exception.stage == pex.ACTIVE:
            self._activate()
        else:
            self.move_to(ipa.AWAITING_EXCEPTION)
            self.mail("progress", [self.case.requester], progress="waiting for an exception")

    async def _follow_named(self, name: str, event: EventIn) -> CaseSnapshot | None:
        """The exception the details name, now followed, if it may cover this IPA; else
        None, with the reason noted on the approval's event."""
        read: CaseRead = await workflow.execute_activity(
            READ_CASE_ACTIVITY,
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

    def linked_case_moved(self, news: LinkedCaseNews) -> None:
        if news.case_id != self.state.exception_case:
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

    # ---- the account in use: a yearly attestation (3.2) -----------------------------------

    def _activate(self) -> None:
        self.move_to(ipa.ACTIVE)
        self.mail("progress", [self.case.requester], progress="approved")

    async def clock_started(self) -> None:
        self.emit("attestation_requested", SYSTEM_ACTOR, {"policy": "3.2"})
        self.mail("attestation_due", [self.case.requester])
        await self.commit()

    @action("attest")
    async def attest(self, act: Act) -> None:
        self.move_to(ipa.ACTIVE)
        self.state.last_attested_at = workflow.now()
        self._roll_over = True  # a fresh run per year keeps the history short

    @action("revoke")
    async def revoke(self, act: Act) -> None:
        self.close(ipa.REVOKED, act.fields)

    @action("retire")
    async def retire(self, act: Act) -> None:
        self.close(ipa.RETIRED, act.fields)
