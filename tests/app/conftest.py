"""Fixtures for the service, API and CLI tests: people, and `Services` two ways.

`services` is the real thing on the time-skipping server with a worker on its
own task queue; `offline_services` has a Temporal client that fails any call,
for what must never reach Temporal (refused intake, reads, authentication).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from app.platform.db import session_factory
from app.platform.settings import Settings
from app.service.people import import_people
from app.service.services import Services
from domain.policy import load_policy
from models import CaseCounter
from workflows.registry import CASE_TYPES

PEOPLE = """email,name,manager_email,roles
ceo@dwp.gov.uk,Chief Executive,,
manager@dwp.gov.uk,Line Manager,ceo@dwp.gov.uk,
employee@dwp.gov.uk,Employee,manager@dwp.gov.uk,
loner@dwp.gov.uk,No Manager,,
officer@dwp.gov.uk,SAC Officer,saclead@dwp.gov.uk,sac
saclead@dwp.gov.uk,SAC Lead,ceo@dwp.gov.uk,sac;sac_lead
sirt@dwp.gov.uk,Investigator,ceo@dwp.gov.uk,sirt
auditor@dwp.gov.uk,Auditor,ceo@dwp.gov.uk,auditor
"""


class NoTemporal:
    """Stands in for a Temporal client that must not be used: any call fails the test."""

    calls: list[str]

    def __init__(self) -> None:
        self.calls = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        raise AssertionError(f"Temporal was called: {name}")


@pytest.fixture
def people(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        import_people(session, PEOPLE)


@pytest.fixture
def offline_services(settings: Settings, engine: Engine, people: None) -> Services:
    return Services(
        settings=settings,
        sessions=session_factory(engine),
        client=cast(Client, NoTemporal()),
        policy=load_policy(settings.policy_file),
    )


# The Temporal server outlives each test's database: start every test's case numbers
# somewhere new, or a fresh counter would reuse a workflow ID an earlier test left running.
_NUMBER_BLOCKS = itertools.count(1)


def start_numbering_afresh(sessions: sessionmaker[Session]) -> None:
    block = next(_NUMBER_BLOCKS) * 1000
    with sessions.begin() as session:
        for rules in CASE_TYPES.values():
            key = f"{rules.prefix}-{datetime.now(UTC).year}"
            session.add(CaseCounter(prefix=key, last=block))


@pytest.fixture
def services(  # the imported fixtures, by name:
    settings: Settings,
    engine: Engine,
    temporal_client: Client,
    worker: Worker,
    people: None,
) -> Services:
    sessions = session_factory(engine)
    start_numbering_afresh(sessions)
    return Services(
        settings=settings.model_copy(update={"task_queue": worker.task_queue}),
        sessions=sessions,
        client=temporal_client,
        policy=load_policy(settings.policy_file),
    )
