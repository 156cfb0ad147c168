"""The retention activity: anonymise or purge closed cases past their retention."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from domain.policy import Policy
from domain.retention import apply_retention
from workflows.retention import RETENTION_ACTIVITY, RetentionRequest, RetentionResult


class RetentionActivities:
    """Built by `worker.py` with the database and the policy the worker loaded."""

    def __init__(self, db: Engine | sessionmaker[Session], policy: Policy) -> None:
        self._sessions = sessionmaker(db, expire_on_commit=False) if isinstance(db, Engine) else db
        self._policy = policy

    @activity.defn(name=RETENTION_ACTIVITY)
    def apply(self, request: RetentionRequest) -> RetentionResult:
        """Idempotent: a case already dealt with is skipped, so a retry carries on."""
        done = apply_retention(self._sessions, self._policy, request.now)
        if done.anonymised or done.purged:
            activity.logger.info(
                "retention: %d anonymised, %d purged", len(done.anonymised), len(done.purged)
            )
        return RetentionResult(anonymised=done.anonymised, purged=done.purged)
