"""An investigation of social media abuse, from report to finding (policy 4, 6.3, Annex 1).

SIRT triages the report and assigns an investigator, who gathers evidence (and may
extend the deadline twice) and concludes with a finding; a SIRT lead other than the
investigator closes it, or reopens it. A substantiated finding against an employee,
referred, raises a `disciplinary_referral` that outlives the investigation (6.2).

Confidential, and the perpetrator is conflicted: never escalated to, never mailed.
The targets' line managers are told, without a word about the case, that a colleague
may need support; a manager who is the perpetrator is passed over for the next one up.
Who may do what is `investigation_types.RULES`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

from workflows import investigation_types as abu
from workflows import referral_types as dis
from workflows.base import RECORD_TIMEOUT
from workflows.common import (
    SYSTEM_ACTOR,
    Actor,
    CaseSnapshot,
    EscalationTarget,
    EscalationTargetRequest,
)
from workflows.engine import Act, CaseWorkflow, action
from workflows.investigation_types import Conclusion, InvestigationInput, InvestigationState
from workflows.registry import ESCALATION_TARGET_ACTIVITY
from workflows.rules import CONFLICT, INVALID, ActionRule, Refusal, parties_from_details


@workflow.defn(name=abu.RULES.workflow)
class AbuseInvestigationWorkflow(CaseWorkflow[InvestigationState]):
    RULES = abu.RULES

    @workflow.init
    def __init__(self, inp: InvestigationInput) -> None:
        super().__init__(inp, inp.state or InvestigationState(case=inp.case))
        self._welfare: list[tuple[str, EscalationTarget]] = []

    @workflow.run
    async def run(self, inp: InvestigationInput) -> CaseSnapshot:
        if not self.state.opened_recorded:
            self._welfare = await self._targets_managers()
        return await self.run_case()

    # ---- opening: the targets' managers ------------------------------------------------

    async def _targets_managers(self) -> list[tuple[str, EscalationTarget]]:
        """Each target's line manager, passing over the perpetrator (looked up before the
        opening is recorded, so the opening records who was told)."""
        targets: list[str] = list(self.case.details.get("targets") or ())
        found = await asyncio.gather(
            *(
                workflow.execute_activity(
                    ESCALATION_TARGET_ACTIVITY,
                    EscalationTargetRequest(level=1, owner=t, exclude=self.never_escalated_to()),
                    result_type=EscalationTarget,
                    start_to_close_timeout=RECORD_TIMEOUT,
                )
                for t in targets
            )
        )
        return list(zip(targets, found, strict=True))

    def opening(self) -> None:
        for target, manager in self._welfare:
            if manager.skipped:
                self.emit(
                    "welfare_skipped",
                    SYSTEM_ACTOR,
                    {
                        "target": target,
                        "skipped": manager.skipped,
                        "to": manager.email,
                        "reason": "a party to the case",
                    },
                )
            if manager.email is None:
                self.emit(
                    "welfare_unsent", SYSTEM_ACTOR, {"target": target, "reason": "no manager"}
                )
                continue
            # Anonymous (domain.mail): names the colleague, never the case.
            self.mail("welfare", [manager.email], recipient_name=manager.name, colleague=target)
        self._welfare = []

    # ---- actions ------------------------------------------------------------------------

    def check(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        # Who may be given the case (not its perpetrator, nor a target) is
        # `rules.assignment_refusal`'s, asked before this.
        if rule.name == "identify_perpetrator":
            refusal = abu.perpetrator_refusal(fields)
            if refusal is not None:
                raise refusal
            if fields.get("email") and fields["email"] == self.case.parties.get("investigator"):
                raise Refusal(
                    INVALID,
                    "email: the investigator may not name themselves; a SIRT lead reassigns"
                    " the case first",
                    "email",
                )
        if rule.name == "extend" and self.state.extensions >= abu.MAX_EXTENSIONS:
            raise Refusal(
                CONFLICT, f"extend: at most {abu.MAX_EXTENSIONS} extensions per investigation"
            )
        sha256 = fields.get("sha256")
        if sha256 is not None and not abu.SHA256_RE.match(sha256):
            raise Refusal(
                INVALID, "sha256: must be 64 lower-case hexadecimal digits (a SHA-256)", "sha256"
            )
        if rule.name == "conclude" and fields["refer"]:
            # Policy 6.2: disciplinary action, for a breach shown, by an employee.
            if fields["finding"] != abu.SUBSTANTIATED:
                raise Refusal(
                    INVALID, "refer: only a substantiated finding is referred (policy 6.2)", "refer"
                )
            if not self._employee_perpetrator():
                raise Refusal(
                    INVALID,
                    "refer: only an employee perpetrator is referred to HR (policy 6.2)",
                    "refer",
                )

    # ---- triage ---------------------------------------------------------------------------

    @action("assign")
    async def assign(self, act: Act) -> None:
        self._hand_to(act.fields["investigator"])
        self.move_to(abu.INVESTIGATION)

    @action("no_further_action")
    async def no_further_action(self, act: Act) -> None:
        self.close(abu.NO_FURTHER_ACTION, act.fields)

    # ---- the investigation ------------------------------------------------------------------

    @action("add_evidence")
    async def add_evidence(self, act: Act) -> None:
        self.state.evidence += 1
        act.event.data["item"] = self.state.evidence

    @action("identify_perpetrator")
    async def identify_perpetrator(self, act: Act) -> None:
        """The details name the perpetrator found, and so do the parties: from now on they
        see nothing of the case, act on nothing, and are mailed and escalated to never."""
        previous = self.case.details.get("perpetrator")
        self.case.details["perpetrator"] = dict(act.fields)
        self.case.parties.pop("perpetrator", None)
        self.case.parties.update(parties_from_details(abu.RULES, self.case.details))
        act.event.data["previous"] = previous

    @action("extend")
    async def extend(self, act: Act) -> None:
        self.state.extensions += 1
        act.event.data.update(await self._extend(act.fields["by"]))

    @action("conclude")
    async def conclude(self, act: Act) -> None:
        fields = act.fields
        self.state.conclusion = Conclusion(
            fields["finding"],
            fields["summary"],
            fields["refer"],
            bool(fields.get("criminal_consideration")),
        )
        self.case.parties["concluded_by"] = act.actor.email
        self.move_to(abu.REVIEW)

    # ---- the review (a SIRT lead who did not investigate it) -------------------------------

    @action("close")
    async def close_case(self, act: Act) -> None:
        await self._close(act)

    @action("reopen")
    async def reopen(self, act: Act) -> None:
        self.move_to(abu.INVESTIGATION)

    @action("reassign")
    async def reassign_case(self, act: Act) -> None:
        self.reassign(act.fields["assignee"])
        if self.case.stage != abu.TRIAGE:
            # The investigation changes hands: the new investigator carries it on.
            self._hand_to(act.fields["assignee"])
        self.case.owner = self.owner_of(self.case.stage)

    def _hand_to(self, investigator: str) -> None:
        self.case.parties["investigator"] = investigator
        self.case.parties["assignee"] = self.case.assignee = investigator

    def _employee_perpetrator(self) -> str | None:
        perpetrator = self.case.details.get("perpetrator") or {}
        if perpetrator.get("kind") != abu.EMPLOYEE:
            return None
        return self.case.parties.get("perpetrator")

    async def _extend(self, by: str) -> dict[str, Any]:
        """Move the stage's due time on by `by`, its reminder with it."""
        clock = self.state.clock
        before = clock.due_at if clock and clock.due_at else workflow.now()
        lead = (
            clock.due_at - clock.remind_at if clock and clock.due_at and clock.remind_at else None
        )
        due = (await self.offsets(before, [by]))[0]
        self.due_by(due)
        if lead is not None and due - lead > workflow.now() and self.state.clock:
            self.state.clock.remind_at = due - lead
        return {
            "extension": self.state.extensions,
            "due_at_before": before.isoformat(),
            "due_at": due.isoformat(),
        }

    async def _close(self, act: Act) -> None:
        """Close with the finding, raising the referral first when it is referred (6.2)."""
        conclusion = self.state.conclusion
        assert conclusion is not None
        data: dict[str, Any] = {"finding": conclusion.finding}
        subject = self._employee_perpetrator()
        if conclusion.refer and conclusion.finding == abu.SUBSTANTIATED and subject:
            referral = await self.open_linked(
                dis.RULES,
                requester=act.actor.email,
                details={
                    "subject": subject,
                    "breach": conclusion.summary,
                    "policy_sections": abu.policy_sections(self.case.details.get("category", "")),
                    "source_case": self.case.id,
                    "criminal_consideration": conclusion.criminal_consideration,
                },
                parties={"requester": act.actor.email, "subject": subject},
                relation="referral",
                back_relation="investigation",
            )
            act.event.data["referral"] = data["referral"] = referral
        self.close(conclusion.finding, data)
