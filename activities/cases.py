"""Raising a linked case from a workflow: its number, and the policy it opens under;
and reading another case, as the read model has it."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from domain.case_ids import next_case_id
from domain.policy import Policy
from domain.views import snapshot_of
from models import Case
from workflows.common import CaseRead, CaseReadRequest, LinkedCasePlan, LinkedCaseRequest
from workflows.registry import PREPARE_LINKED_CASE_ACTIVITY, READ_CASE_ACTIVITY


class LinkedCaseActivities:
    def __init__(self, engine: Engine, policy: Policy) -> None:
        self._sessions = sessionmaker(engine)
        self._policy = policy

    @activity.defn(name=PREPARE_LINKED_CASE_ACTIVITY)
    def prepare_linked_case(self, request: LinkedCaseRequest) -> LinkedCasePlan:
        # A retry allocates another number: a gap in the numbering, never a duplicate.
        session: Session
        with self._sessions.begin() as session:
            case_id = next_case_id(session, request.prefix, request.year)
        return LinkedCasePlan(case_id=case_id, policy=self._policy.for_case(request.type))

    @activity.defn(name=READ_CASE_ACTIVITY)
    def read_case(self, request: CaseReadRequest) -> CaseRead:
        """Another case as the read model has it: what a workflow may know of its peers."""
        with self._sessions() as session:
            row = session.get(Case, request.case_id)
            return CaseRead(case=snapshot_of(row) if row is not None else None)
