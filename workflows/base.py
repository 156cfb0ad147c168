"""What every part of a case workflow shares: its rules, policy and state, and the few
steps one part asks of another.

`CaseWorkflow` (workflows/engine.py) is built from parts, each a module a newcomer can
read alone: the audit trail and mail (`Outbox`), the service-level clock and its
chase (`Chase`), and linked cases (`Links`). This base names what they share, so each
part can call the others' steps (they are found through the method resolution order).
Standard library and temporalio only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar, Generic, TypeVar

from workflows.common import CasePolicy, CaseSnapshot, CaseState, EventIn
from workflows.rules import CaseTypeRules

RECORD_TIMEOUT = timedelta(seconds=30)

StateT = TypeVar("StateT", bound=CaseState)


class CaseBase(Generic[StateT]):
    RULES: ClassVar[CaseTypeRules]
    policy: CasePolicy
    state: StateT
    # Set by an action that wants a fresh run (continue-as-new) once it is recorded.
    _roll_over: bool

    @property
    def case(self) -> CaseSnapshot:
        return self.state.case

    # ---- the audit trail and mail (`Outbox`) --------------------------------------------

    def emit(self, kind: str, actor: str, data: dict[str, Any]) -> EventIn:
        raise NotImplementedError

    def mail(
        self, kind: str, to: list[str | None], *, team: str | None = None, **context: Any
    ) -> None:
        raise NotImplementedError

    async def commit(self) -> None:
        raise NotImplementedError

    # ---- who (`CaseWorkflow`) ---------------------------------------------------------------

    def owner_recipients(self) -> list[str | None]:
        """Who is told the open stage waits on them."""
        raise NotImplementedError

    def owner_team(self) -> str | None:
        """The queue told the open stage waits on it, when no person owns it."""
        raise NotImplementedError

    def people_in_conflict(self) -> list[str]:
        """The parties to the matter this case names now: never mailed, never told."""
        raise NotImplementedError

    def never_escalated_to(self) -> list[str]:
        """Who an escalation passes over, and a queue's mail leaves out."""
        raise NotImplementedError

    async def ends_when_due(self) -> bool:
        """The open stage fell due: True if it ended then (its row says how)."""
        raise NotImplementedError

    async def clock_started(self) -> None:
        """A clock that starts after its stage began has started (a yearly attestation)."""
        raise NotImplementedError

    # ---- the clock (`Chase`) ----------------------------------------------------------------

    async def plan_clock(self) -> None:
        raise NotImplementedError

    # ---- linked cases (`Links`) -------------------------------------------------------------

    async def tell_followers(self) -> None:
        raise NotImplementedError
