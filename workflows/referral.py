"""A disciplinary referral, from HR review to the end of any appeal (policy 6.2, 6.4).

HR accepts it and names a caseworker, who schedules and holds the hearing and
records its outcome; the subject may then appeal within a window the policy file
sets (`appeal_window.sla`), and an HR lead decides the appeal. The subject is
conflicted: never mailed, never escalated to, and unable to act but to appeal.
Who may do what is `referral_types.RULES`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from temporalio import workflow

from workflows import referral_types as dis
from workflows.common import SYSTEM_ACTOR, Actor, CaseInput, CaseSnapshot
from workflows.engine import CaseWorkflow
from workflows.localtime import end_of_local_date, local_date
from workflows.rules import INVALID, ActionRule, Refusal, parties_from_details

# Where the hearing's outcome waits (in `CaseState.extra`) while it may be appealed.
RECORDED = "recorded_outcome"
# A referral an investigation raised is not mailed to its requester, the SIRT lead who
# closed the investigation: they may not see it (API.md), and a link to it would 404.
RAISER_NOT_MAILED = "referral-raiser-not-mailed"


@workflow.defn(name=dis.RULES.workflow)
class DisciplinaryReferralWorkflow(CaseWorkflow):
    RULES = dis.RULES
    STAGE_OWNER = dis.STAGE_OWNER

    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        super().__init__(inp)
        # However it was raised (HR, or an investigation), the details name the subject,
        # and what is said of them is never mailed.
        for party, email in parties_from_details(dis.RULES, self.case.details).items():
            self.case.parties.setdefault(party, email)
        self.case.confidential = True

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseSnapshot:
        return await self.run_case()

    def on_open(self) -> None:
        if self.case.details.get("criminal_consideration"):
            # Policy 6.2: disciplinary action "as well as consideration of a criminal
            # prosecution if appropriate": on the record from the start, for HR to act on.
            self.emit("criminal_consideration", SYSTEM_ACTOR, {"policy": "6.2"})

    def mail(
        self, kind: str, to: list[str | None], *, team: str | None = None, **context: Any
    ) -> None:
        requester = self.case.requester
        raised = any(link.relation == "investigation" for link in self.case.links)
        if raised and requester in to and workflow.patched(RAISER_NOT_MAILED):
            to = [t for t in to if t != requester]
        super().mail(kind, to, team=team, **context)

    def owner_of(self, stage: str) -> str | None:
        if stage == dis.APPEAL:
            # The HR queue, whose lead decides: not the caseworker whose hearing it was.
            return None
        return super().owner_of(stage)

    def queue_of(self, stage: str) -> str | None:
        # Only an HR lead may decide an appeal: only they are told of one.
        return "hr_lead" if stage == dis.APPEAL else super().queue_of(stage)

    def check(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        subject = self.case.parties.get("subject")
        for name in ("caseworker", "assignee"):
            if fields.get(name) and fields[name] == subject:
                raise Refusal(
                    INVALID, f"{name}: the subject may not handle their own referral", name
                )
        on = fields.get("on")
        # Not a command, and never replayed: the staff's date, whenever the case opened.
        if on and date.fromisoformat(on) < local_date(workflow.now(), self.policy.timezone):
            raise Refusal(INVALID, "on: the hearing cannot be in the past", "on")

    def apply(self, rule: ActionRule, actor: Actor, fields: dict[str, Any]) -> None:
        match rule.name:
            case "accept":
                self._hand_to(fields["caseworker"])
                self.move_to(dis.HEARING)
            case "no_case_to_answer":
                self.close(dis.NO_CASE_TO_ANSWER, fields)
            case "schedule_hearing":
                self.due_by(self._end_of(date.fromisoformat(fields["on"])))
            case "record_outcome":
                self._record_outcome(fields["outcome"], fields)
            case "appeal":
                self.move_to(dis.APPEAL)
            case "decide_appeal":
                if fields["upheld"]:
                    self.close(dis.OVERTURNED, {"reason": fields["reason"], "appeal": "upheld"})
                else:
                    self.close(
                        self._recorded(), {"reason": fields["reason"], "appeal": "dismissed"}
                    )
            case "reassign":
                self.reassign(fields["assignee"])
                if self.case.stage in (dis.HEARING, dis.APPEAL_WINDOW):
                    # The case changes hands: the new caseworker hears it.
                    self._hand_to(fields["assignee"])
                    self.case.owner = self.owner_of(self.case.stage)
            case "comment":
                pass

    async def on_due(self) -> bool:
        if self.case.stage == dis.APPEAL_WINDOW:
            self.close(self._recorded(), {"reason": "the appeal window ended without an appeal"})
            await self.commit()
            return True
        return await super().on_due()

    def _hand_to(self, caseworker: str) -> None:
        self.case.parties["caseworker"] = caseworker
        self.case.parties["assignee"] = self.case.assignee = caseworker

    def _record_outcome(self, outcome: str, fields: dict[str, Any]) -> None:
        if outcome == dis.NO_ACTION:
            self.close(dis.NO_ACTION, fields)
            return
        self.state.extra[RECORDED] = outcome
        # Shown while it may be appealed: it is what the subject (who sees only the
        # outline) would appeal against. Final when the window ends or the appeal fails.
        self.case.outcome = outcome
        self.move_to(dis.APPEAL_WINDOW)

    def _end_of(self, day: date) -> datetime:
        """The hearing is due by the end of its day, the staff's midnight (UTC's, in a run
        from before local time): its outcome is recorded that day."""
        if self.counts_in_local_time():
            return end_of_local_date(day, self.policy.timezone)
        return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)

    def _recorded(self) -> str:
        return str(self.state.extra[RECORDED])
