"""The `record` activity: a case's row and its new events, written in one transaction.

The writing itself (and the audit chain's hash rule) is `domain.records`, shared with
the service layer and retention.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from domain.records import (
    append_events,
    in_transaction_retrying,
    record_escalations,
    upsert_case,
)
from workflows.common import RecordRequest
from workflows.registry import RECORD_ACTIVITY


class RecordActivities:
    def __init__(self, db: Engine | sessionmaker[Session]) -> None:
        self._sessions = sessionmaker(db, expire_on_commit=False) if isinstance(db, Engine) else db

    @activity.defn(name=RECORD_ACTIVITY)
    def record(self, req: RecordRequest) -> None:
        """Case row, then its events (they reference it), in one transaction."""

        def work(session: Session) -> None:
            current = upsert_case(session, req.case)
            append_events(session, req.case.id, req.events)
            if current:
                record_escalations(session, req.case, req.events)

        in_transaction_retrying(self._sessions, work)
