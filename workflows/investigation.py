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
from workflows.common import (
    SYSTEM_ACTOR,
    Actor,
    CaseInput,
    CaseSnapshot,
    EscalationTarget,
    EscalationTargetRequest,
    EventIn,
)
from workflows.engine import RECORD_TIMEOUT, CaseWorkflow
from workflows.rules import CONFLICT, INVALID, ActionRule, Refusal, parties_from_details

# In `CaseState.extra`: the investigator's conclusion, and counts of extensions and evidence.
CONCLUSION = "conclusion"
EXTENSIONS = "extensions"
EVIDENCE = "evidence"


@workflow.defn(name=abu.RULES.workflow)
class AbuseInvestigationWorkflow(CaseWorkflow):
    RULES = abu.RULES
    STAGE_OWNER = abu.STAGE_OWNER

    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        super().__init__(inp)
        self._welfare: list[tuple[str, EscalationTarget]] = []
        self._previous_perpetrator: Any = None

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseSnapshot:
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
                    "escalation_target",
                    EscalationTargetRequest(level=1, owner=t, exclude=self.conflicted()),
                    result_type=EscalationTarget,
                    start_to_close_timeout=RECORD_TIMEOUT,
                )
                for t in targets
            )
        )
        return list(zip(targets, found, strict=True))

    def on_open(self) -> None:
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

    # ---- who ----------------------------------------------------------------------------

    def queue_of(self, stage: str) -> str | None:
        # Only a SIRT lead may close or reopen: only the leads are told a finding waits.
        return "sirt_lead" if stage == abu.REVIEW else super().queue_of(stage)

    def owner_of(self, stage: str) -> str | None:
        if stage == abu.REVIEW:
            # The SIRT queue, whose lead reviews: not the investigator whose finding it is.
            return None
        return super().owner_of(stage)

    # ---- actions ------------------------------------------------------------------------

    def check(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        perpetrator = self.case.parties.get("perpetrator")
        targets = set(self.case.details.get("targets") or ())
        for name in ("investigator", "assignee"):
            person = fields.get(name)
            if person and (person == perpetrator or person in targets):
                raise Refusal(INVALID, f"{name}: a party to the abuse may not investigate it", name)
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
        if rule.name == "extend" and self.state.extra.get(EXTENSIONS, 0) >= abu.MAX_EXTENSIONS:
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

    def apply(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        match rule.name:
            case "assign":
                self._hand_to(fields["investigator"])
                self.move_to(abu.INVESTIGATION)
            case "no_further_action":
                self.close(abu.NO_FURTHER_ACTION, fields)
            case "add_evidence":
                self.state.extra[EVIDENCE] = self.state.extra.get(EVIDENCE, 0) + 1
            case "identify_perpetrator":
                self._identify(fields)
            case "extend":
                # The due time moves in `after_apply`: working days need the calendar.
                self.state.extra[EXTENSIONS] = self.state.extra.get(EXTENSIONS, 0) + 1
            case "conclude":
                self.state.extra[CONCLUSION] = dict(fields)
                self.case.parties["concluded_by"] = actor.email
                self.move_to(abu.REVIEW)
            case "close":
                pass  # in `after_apply`: any referral is raised before the case closes
            case "reopen":
                self.move_to(abu.INVESTIGATION)
            case "reassign":
                self.reassign(fields["assignee"])
                if self.case.stage != abu.TRIAGE:
                    # The investigation changes hands: the new investigator carries it on.
                    self._hand_to(fields["assignee"])
                self.case.owner = self.owner_of(self.case.stage)
            case "comment":
                pass

    async def after_apply(
        self, rule: ActionRule, actor: Actor, fields: dict[str, Any], event: EventIn
    ) -> None:
        match rule.name:
            case "add_evidence":
                event.data["item"] = self.state.extra[EVIDENCE]
            case "identify_perpetrator":
                event.data["previous"] = self._previous_perpetrator
            case "extend":
                event.data.update(await self._extend(fields["by"]))
            case "close":
                await self._close(actor, event)

    def _hand_to(self, investigator: str) -> None:
        self.case.parties["investigator"] = investigator
        self.case.parties["assignee"] = self.case.assignee = investigator

    def _identify(self, fields: dict[str, Any]) -> None:
        """The details name the perpetrator found, and so do the parties: from now on they
        see nothing of the case, act on nothing, and are mailed and escalated to never."""
        self._previous_perpetrator = self.case.details.get("perpetrator")
        self.case.details["perpetrator"] = dict(fields)
        self.case.parties.pop("perpetrator", None)
        self.case.parties.update(parties_from_details(abu.RULES, self.case.details))

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
            "extension": self.state.extra[EXTENSIONS],
            "due_at_before": before.isoformat(),
            "due_at": due.isoformat(),
        }

    async def _close(self, actor: Actor, event: EventIn) -> None:
        conclusion: dict[str, Any] = self.state.extra[CONCLUSION]
        finding = conclusion["finding"]
        data: dict[str, Any] = {"finding": finding}
        subject = self._employee_perpetrator()
        if conclusion["refer"] and finding == abu.SUBSTANTIATED and subject:
            referral = await self.open_linked(
                dis.RULES,
                requester=actor.email,
                details={
                    "subject": subject,
                    "breach": conclusion["summary"],
                    "policy_sections": abu.policy_sections(self.case.details.get("category", "")),
                    "source_case": self.case.id,
                    "criminal_consideration": bool(conclusion.get("criminal_consideration")),
                },
                parties={"requester": actor.email, "subject": subject},
                relation="referral",
                back_relation="investigation",
            )
            event.data["referral"] = data["referral"] = referral
        self.close(finding, data)
