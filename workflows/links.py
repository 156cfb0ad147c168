"""Linked cases: a case raises another that outlives it (an IPA its policy exception, an
investigation its disciplinary referral), and a case told how a linked one moves on.

The raised case is a workflow of its own (a child abandoned when its parent closes).
One that follows (`follow`) is signalled after each recorded change of the case it
follows, once per change, and may ask to follow later (`FOLLOW_SIGNAL`: an IPA naming
an exception that was approved before it). Standard library and temporalio only.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

from workflows.base import RECORD_TIMEOUT, CaseBase, StateT
from workflows.common import (
    OPEN,
    SYSTEM_ACTOR,
    CaseInput,
    CaseSnapshot,
    CaseState,
    Link,
    LinkedCaseNews,
    LinkedCasePlan,
    LinkedCaseRequest,
)
from workflows.registry import FOLLOW_SIGNAL, LINKED_SIGNAL, PREPARE_LINKED_CASE_ACTIVITY
from workflows.rules import CaseTypeRules


class Links(CaseBase[StateT]):
    def linked_case_moved(self, news: LinkedCaseNews) -> None:
        """A case this one follows has moved on (e.g. its exception was approved)."""

    @workflow.signal(name=LINKED_SIGNAL)
    async def linked_case_changed(self, news: LinkedCaseNews) -> None:
        if self.case.status != OPEN:
            return
        self.emit(
            "linked_case_changed",
            SYSTEM_ACTOR,
            {
                "case": news.case_id,
                "status": news.status,
                "stage": news.stage,
                "outcome": news.outcome,
            },
        )
        self.linked_case_moved(news)
        await self.commit()

    @workflow.signal(name=FOLLOW_SIGNAL)
    async def follow(self, follower: Link) -> None:
        """One more case follows this one (an IPA naming an exception approved before it):
        linked both ways, and told where this case stands now and as it moves on."""
        followers = self.state.followers
        if follower.id in followers or follower.id == self.state.follower:
            return
        if self.case.status != OPEN:
            await self._tell(follower.id)
            return
        followers[follower.id] = ""  # not told yet: the commit tells it
        self.case.links.append(Link(follower.id, follower.relation))
        self.emit("linked", SYSTEM_ACTOR, {"case": follower.id, "relation": follower.relation})
        await self.commit()

    async def open_linked(
        self,
        rules: CaseTypeRules,
        *,
        requester: str,
        details: dict[str, Any],
        parties: dict[str, str],
        relation: str,
        back_relation: str,
        follow: bool = False,
    ) -> str:
        """Raise a linked case of `rules.type` as a case of its own that outlives this
        one. With `follow`, it signals this case as it moves (`linked_case_moved`)."""
        now = workflow.now()
        plan: LinkedCasePlan = await workflow.execute_activity(
            PREPARE_LINKED_CASE_ACTIVITY,
            LinkedCaseRequest(type=rules.type, prefix=rules.prefix, year=now.year),
            result_type=LinkedCasePlan,
            start_to_close_timeout=RECORD_TIMEOUT,
        )
        linked = CaseSnapshot(
            id=plan.case_id,
            type=rules.type,
            status=OPEN,
            stage=rules.stages[0],
            requester=requester,
            opened_at=now,
            updated_at=now,
            team=rules.team,
            details=details,
            links=[Link(self.case.id, back_relation)],
            parties=parties,
            policy_version=plan.policy.version,
            confidential=rules.confidential,
        )
        state = CaseState(case=linked, follower=self.case.id if follow else None)
        await workflow.start_child_workflow(
            rules.workflow,
            CaseInput(linked, plan.policy, state),
            id=plan.case_id,
            task_queue=workflow.info().task_queue,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        self.case.links.append(Link(plan.case_id, relation))
        self.emit("linked", SYSTEM_ACTOR, {"case": plan.case_id, "relation": relation})
        return plan.case_id

    async def tell_followers(self) -> None:
        """Tell the cases that follow this one where it stands, once per change."""
        where = f"{self.case.status}:{self.case.stage}"
        if self.state.follower and self.state.told != where:
            self.state.told = where
            await self._tell(self.state.follower)
        # Cases that asked to follow this one later (`follow`), each told once per move.
        for other, told in list(self.state.followers.items()):
            if told != where:
                self.state.followers[other] = where
                await self._tell(other)

    async def _tell(self, follower: str) -> None:
        news = LinkedCaseNews(
            case_id=self.case.id,
            type=self.case.type,
            status=self.case.status,
            stage=self.case.stage,
            outcome=self.case.outcome,
        )
        try:
            await workflow.get_external_workflow_handle(follower).signal(LINKED_SIGNAL, news)
        except ApplicationError:
            # The case to tell has closed: there is no one left to tell.
            workflow.logger.info("linked case %s has closed", follower)
