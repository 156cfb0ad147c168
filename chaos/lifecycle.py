"""People progressing IPA requests through the service layer, as the API calls it.

A person whose request fails for a passing reason (Temporal or the database out of
reach) looks at the case before trying again, as a person at a browser would: an
action that did happen is not taken twice, so any duplicate counted afterwards is
the product's, not the driver's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from app import service
from app.service.errors import ServiceError, Unavailable
from chaos.rig import EMPLOYEES, MANAGERS, OFFICERS, Stack
from models import Case, CaseEvent
from workflows import ipa_types
from workflows.common import Actor

# The whole life of an IPA: endorsed, a question asked and answered, approved, attested
# (which starts a fresh run: continue-as-new), retired. (action, who, fields)
LIFECYCLE: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("endorse", "manager", {}),
    ("request_info", "officer", {"question": "Which events will the account promote?"}),
    ("provide_info", "requester", {"answer": "Recruitment fairs in the North West"}),
    ("approve", "officer", {}),
    ("attest", "requester", {}),
    ("retire", "requester", {}),
)
# Each transition of that life, in the audit trail exactly once.
LIFECYCLE_EVENTS = {"opened": 1, **{action: 1 for action, _, _ in LIFECYCLE}, "closed": 1}
# Events written when the stage's clock runs out (remind, then escalate once).
CHASED_EVENTS = {"opened": 1, "reminded": 1, "escalated": 1}

PASSING = (Unavailable, RPCError, SQLAlchemyError, TimeoutError, ConnectionError)
SETTLE = 120.0  # seconds to wait for an outcome that is on its way


@dataclass
class Driver:
    stack: Stack
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    retries: int = 0  # service calls that failed and were looked into
    actions: int = 0
    _actors: dict[str, Actor] = field(default_factory=dict)

    async def actor(self, email: str) -> Actor:
        if email not in self._actors:
            self._actors[email] = await _retrying(
                lambda: service.actor_for(self.stack.svc, email=email)
            )
        return self._actors[email]

    def people(self, n: int) -> dict[str, str]:
        e = n % EMPLOYEES
        return {
            "requester": f"employee{e}@dwp.gov.uk",
            "manager": f"manager{e % MANAGERS}@dwp.gov.uk",
            "officer": f"officer{n % OFFICERS}@dwp.gov.uk",
        }

    async def open(self, n: int) -> str:
        """Open request `n`; its case id. A failed attempt is looked for before another."""
        handle = f"@chaos{self.run}n{n:05d}"
        requester = await self.actor(self.people(n)["requester"])
        details = {
            "account_kind": "individual_professional",
            "platform": "X",
            "handle": handle,
            "justification": "Promote recruitment events",
            "device": "dwp_managed",
            "contact_email": requester.email,
        }
        while True:
            try:
                case = await service.open_case(
                    self.stack.svc, actor=requester, case_type=ipa_types.TYPE, details=details
                )
                return str(case["id"])
            except PASSING:
                self.retries += 1
                found = await self._wait_for(lambda: self._case_with(handle), SETTLE)
                if found is not None:
                    return str(found)

    async def act(
        self, case_id: str, n: int, action: str, who: str, fields: dict[str, Any]
    ) -> None:
        actor = await self.actor(self.people(n)[who])
        while True:
            try:
                await service.act(
                    self.stack.svc, actor=actor, case_id=case_id, action=action, fields=dict(fields)
                )
                self.actions += 1
                return
            except PASSING:
                self.retries += 1
                if await self._wait_for(lambda: self._happened(case_id, action), SETTLE):
                    self.actions += 1
                    return
            except ServiceError:
                # Refused: only acceptable if an earlier attempt did it after all.
                if await self._happened(case_id, action):
                    return
                raise

    async def lifecycle(self, n: int) -> str:
        case_id = await self.open(n)
        for action, who, fields in LIFECYCLE:
            await self.act(case_id, n, action, who, fields)
        return case_id

    async def _case_with(self, handle: str) -> str | None:
        needle = f"%{handle.lower()}%"
        query = select(Case.id).where(Case.search_text.like(needle))
        return await self.stack.svc.run(lambda s: s.scalar(query))

    async def _happened(self, case_id: str, action: str) -> bool:
        query = select(CaseEvent.seq).where(CaseEvent.case_id == case_id, CaseEvent.kind == action)
        return await self.stack.svc.run(lambda s: s.scalar(query.limit(1))) is not None

    async def _wait_for(self, check: Callable[[], Awaitable[Any]], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = await check()
                if found:
                    return found
            except PASSING:
                pass
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(1.0)


async def _retrying(call: Callable[[], Awaitable[Actor]]) -> Actor:
    for _ in range(60):
        try:
            return await call()
        except PASSING:
            await asyncio.sleep(1.0)
    return await call()


async def wait_completed(stack: Stack, case_ids: list[str], timeout: float) -> list[str]:
    """Wait for every case's workflow to complete; those still not completed at the end."""
    deadline = time.monotonic() + timeout
    waiting = list(case_ids)
    while waiting and time.monotonic() < deadline:
        still = []
        for case_id in waiting:
            try:
                described = await stack.svc.client.get_workflow_handle(case_id).describe()
                if described.status != WorkflowExecutionStatus.COMPLETED:
                    still.append(case_id)
            except RPCError:
                still.append(case_id)
        waiting = still
        if waiting:
            await asyncio.sleep(2.0)
    return waiting
