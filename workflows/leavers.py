"""A person has left the directory: the open work of a case that waits on them moves on.

The service sends `person_left` to each open case that names the leaver (their assigned
work it hands over first with `reassign`, the one path for who may be assigned). Here,
deterministically: a stage that waits on them as a party of the case (a manager's
endorsement) goes to the person the service chose, its escalations now counted from
them; an escalation that rests on them goes to whoever the directory now has at its
level (`escalation_target` passes over leavers). Each move is a `rerouted` event and
an email to the new person. Standard library and temporalio only.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.base import RECORD_TIMEOUT, StateT
from workflows.chase import Chase
from workflows.common import OPEN, EscalationTarget, PersonLeft, PersonLeftResult
from workflows.registry import ESCALATION_TARGET_ACTIVITY, PERSON_LEFT_UPDATE

# Parties whose stage never moves to someone else: the requester's own answer or
# attestation is theirs alone.
_THEIR_OWN = ("requester",)


class Leavers(Chase[StateT]):
    @workflow.update(name=PERSON_LEFT_UPDATE)
    async def person_left(self, left: PersonLeft) -> PersonLeftResult:
        await workflow.wait_condition(lambda: self.state.opened_recorded)
        who = left.email.strip().lower()
        moved: list[str] = []
        if self.case.status != OPEN:
            return PersonLeftResult(self.case, moved)
        party = self.RULES.stage(self.case.stage).party
        owned = party is not None and self.case.parties.get(party) == who
        movable = party not in _THEIR_OWN and party not in self.RULES.parties_in_conflict
        if owned and movable and party is not None and left.to and left.to != who:
            self._hand_stage(party, who, left)
            moved.append(f"party:{party}")
        clock = self.state.clock
        if clock is not None and clock.escalated_to == who and clock.level:
            target = await workflow.execute_local_activity(
                ESCALATION_TARGET_ACTIVITY,
                self.escalation_request(clock.level),
                result_type=EscalationTarget,
                start_to_close_timeout=RECORD_TIMEOUT,
            )
            clock.escalated_to = target.email
            data = {"from": who, "to": target.email, "escalation_level": clock.level}
            self.emit("rerouted", left.actor, {**data, "reason": left.reason})
            if target.email:
                self.mail("escalation", [target.email], level=clock.level)
            moved.append("escalation")
        if moved:
            await self.commit()
        return PersonLeftResult(self.case, moved)

    def _hand_stage(self, party: str, who: str, left: PersonLeft) -> None:
        """The stage `party` owned is `left.to`'s now; escalations count from them."""
        assert left.to is not None
        self.case.parties[party] = left.to
        self.case.owner = left.to
        clock = self.state.clock
        if clock is not None:
            clock.level, clock.escalated_to = 0, None
        self.case.escalation_level = 0
        data = {"from": who, "to": left.to, "party": party, "reason": left.reason}
        self.emit("rerouted", left.actor, data)
        self.mail("action_needed", [left.to])
