"""An Individual Professional Account, from request to retirement (policy 5.1, 3.2).

The requester's manager endorses, the Security Advice Centre approves, and the
account then stays `active` with a yearly attestation that its holder is
chased for like any other stage (3.2). Who may do what is `ipa_types.RULES`.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from workflows import ipa_types as ipa
from workflows.common import SYSTEM_ACTOR, Actor, CaseInput, CaseSnapshot
from workflows.engine import CaseWorkflow
from workflows.rules import ActionRule


@workflow.defn(name=ipa.RULES.workflow)
class IpaApprovalWorkflow(CaseWorkflow):
    RULES = ipa.RULES
    STAGE_OWNER = ipa.STAGE_OWNER

    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        super().__init__(inp)

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseSnapshot:
        return await self.run_case()

    def first_stage(self) -> str:
        # With no line manager to endorse it, the request goes straight to the SAC.
        if self.case.parties.get("requester_manager"):
            return ipa.MANAGER_ENDORSEMENT
        return ipa.SAC_REVIEW

    def apply(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        match rule.name:
            case "endorse":
                self.move_to(ipa.SAC_REVIEW)
                self.mail("progress", [self.case.requester], progress="endorsed")
            case "decline":
                self.close(ipa.DECLINED, fields)
            case "approve":
                self._approve()
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

    def _approve(self) -> None:
        if self.case.details.get("device") == "personal":
            # Policy 5.1: an IPA on a personal device needs an approved policy exception.
            self.move_to(ipa.AWAITING_EXCEPTION)
            self.mail("progress", [self.case.requester], progress="waiting for an exception")
        else:
            self.move_to(ipa.ACTIVE)
            self.mail("progress", [self.case.requester], progress="approved")

    def clock_start(self, stage: str) -> str | None:
        if stage == ipa.ACTIVE:
            return self.policy.stages[ipa.ACTIVE].extra["attest_every"]
        return None

    async def on_clock_start(self) -> None:
        self.emit("attestation_requested", SYSTEM_ACTOR, {"policy": "3.2"})
        self.mail("attestation_due", [self.case.requester])
        await self.commit()
