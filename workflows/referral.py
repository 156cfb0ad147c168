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
from workflows.common import SYSTEM_ACTOR, Actor, CaseSnapshot
from workflows.engine import Act, CaseWorkflow, action
from workflows.localtime import end_of_local_date, local_date
from workflows.referral_types import ReferralInput, ReferralState
from workflows.rules import INVALID, ActionRule, Refusal, parties_from_details

# A referral an investigation raised is not mailed to its requester, the SIRT lead who
# closed the investigation: they may not see it (API.md), and a link to it would 404.
RAISER_NOT_MAILED = "referral-raiser-not-mailed"
# The subject is told the outcome and the appeal deadline when it is recorded (policy
# 6.4: only they may appeal); referrals recorded before it replay without the mail.
SUBJECT_TOLD = "referral-subject-told"


@workflow.defn(name=dis.RULES.workflow)
class DisciplinaryReferralWorkflow(CaseWorkflow[ReferralState]):
    RULES = dis.RULES

    @workflow.init
    def __init__(self, inp: ReferralInput) -> None:
        super().__init__(inp, inp.state or ReferralState(case=inp.case))
        # However it was raised (HR, or an investigation), the details name the subject,
        # and what is said of them is never mailed.
        for party, email in parties_from_details(dis.RULES, self.case.details).items():
            self.case.parties.setdefault(party, email)
        self.case.confidential = True

    @workflow.run
    async def run(self, inp: ReferralInput) -> CaseSnapshot:
        return await self.run_case()

    def opening(self) -> None:
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

    # ---- HR's review ------------------------------------------------------------------------

    @action("accept")
    async def accept(self, act: Act) -> None:
        self._hand_to(act.fields["caseworker"])
        self.move_to(dis.HEARING)

    @action("no_case_to_answer")
    async def no_case_to_answer(self, act: Act) -> None:
        self.close(dis.NO_CASE_TO_ANSWER, act.fields)

    # ---- the hearing ------------------------------------------------------------------------

    @action("schedule_hearing")
    async def schedule_hearing(self, act: Act) -> None:
        self.due_by(self._end_of(date.fromisoformat(act.fields["on"])))

    @action("record_outcome")
    async def record_outcome(self, act: Act) -> None:
        outcome = act.fields["outcome"]
        if outcome == dis.NO_ACTION:
            self.close(dis.NO_ACTION, act.fields)
            return
        self.state.recorded_outcome = outcome
        # Shown while it may be appealed: it is what the subject (who sees only the
        # outline) would appeal against. Final when the window ends or the appeal fails.
        self.case.outcome = outcome
        self.move_to(dis.APPEAL_WINDOW)
        subject = self.case.parties.get("subject")
        if subject and workflow.patched(SUBJECT_TOLD):
            # The due time is the window's end, planned before the mail is built.
            self.mail_party("appeal_open", subject)

    # ---- the appeal window and the appeal ---------------------------------------------------

    @action("appeal")
    async def appeal(self, act: Act) -> None:
        self.move_to(dis.APPEAL)

    def close_the_appeal_window(self) -> None:
        """The appeal window fell due with no appeal: the recorded outcome stands."""
        self.close(self._recorded(), {"reason": "the appeal window ended without an appeal"})

    @action("decide_appeal")
    async def decide_appeal(self, act: Act) -> None:
        reason = act.fields["reason"]
        if act.fields["upheld"]:
            self.close(dis.OVERTURNED, {"reason": reason, "appeal": "upheld"})
        else:
            self.close(self._recorded(), {"reason": reason, "appeal": "dismissed"})

    @action("reassign")
    async def reassign_case(self, act: Act) -> None:
        self.reassign(act.fields["assignee"])
        if self.case.stage in (dis.HEARING, dis.APPEAL_WINDOW):
            # The case changes hands: the new caseworker hears it.
            self._hand_to(act.fields["assignee"])
            self.case.owner = self.owner_of(self.case.stage)

    def _hand_to(self, caseworker: str) -> None:
        self.case.parties["caseworker"] = caseworker
        self.case.parties["assignee"] = self.case.assignee = caseworker

    def _end_of(self, day: date) -> datetime:
        """The hearing is due by the end of its day, the staff's midnight (UTC's, in a run
        from before local time): its outcome is recorded that day."""
        if self.counts_in_local_time():
            return end_of_local_date(day, self.policy.timezone)
        return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)

    def _recorded(self) -> str:
        assert self.state.recorded_outcome is not None
        return self.state.recorded_outcome
