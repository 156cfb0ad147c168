"""The IPA workflow on the time-skipping server, with real activities, database and SMTP."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from app.service.audit import verify
from domain.calendar import WorkingCalendar
from tests.fixtures_temporal import SmtpSink, eventually
from tests.workflows.helpers import (
    act,
    event_kinds,
    events,
    refused_changing_nothing,
    shipped_policy,
    start,
)
from tests.workflows.ipa_helpers import (
    ADMIN,
    EMPLOYEE,
    MANAGER,
    OFFICER,
    SAC_LEAD,
    fast_policy,
    load_people,
    new_case,
)
from workflows import ipa_types as ipa
from workflows.common import CaseSnapshot


@pytest.fixture(autouse=True)
def people(engine: Engine) -> None:
    load_people(engine)


async def test_whole_life_of_an_ipa_with_a_year_of_attestation(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    policy = shipped_policy()
    began = time.monotonic()
    handle, case = await start(time_skipping_env.client, worker.task_queue, new_case(policy))
    assert (case.stage, case.owner, case.status) == (ipa.MANAGER_ENDORSEMENT, MANAGER.email, "open")
    assert case.policy_version == policy.version
    sla = policy.stages[ipa.TYPE][ipa.MANAGER_ENDORSEMENT].sla
    assert sla is not None
    assert case.due_at == WorkingCalendar().add(case.opened_at, sla)

    case = await act(handle, MANAGER, "endorse")
    assert (case.stage, case.owner) == (ipa.SAC_REVIEW, None)
    case = await act(handle, OFFICER, "approve")
    assert case.stage == ipa.ACTIVE
    assert case.due_at is not None and case.due_at > case.updated_at + timedelta(days=360)

    # A year on, the holder is asked to attest (policy 3.2) ...
    await time_skipping_env.sleep(timedelta(days=366))
    await eventually(lambda: "attestation_requested" in event_kinds(engine, case.id))
    case = await act(handle, EMPLOYEE, "attest")
    assert case.stage == ipa.ACTIVE and case.status == "open"

    # ... and the case continued as new, carrying its state.
    async def continued() -> bool:
        latest = await time_skipping_env.client.get_workflow_handle(case.id).describe()
        return latest.run_id != handle.first_execution_run_id

    await eventually(continued)
    case = await act(handle, EMPLOYEE, "retire")
    assert (case.status, case.outcome, case.stage) == ("closed", ipa.RETIRED, "closed")
    result = await handle.result()
    assert result.outcome == ipa.RETIRED
    assert time.monotonic() - began < 30  # sanity: a year did not take a year

    kinds = event_kinds(engine, case.id)
    assert kinds[:3] == ["opened", "endorse", "approve"]
    assert kinds.count("attest") == 1 and kinds[-2:] == ["retire", "closed"]
    with Session(engine) as session:
        assert verify(session, case.id).ok
    await eventually(lambda: len(sink.to(MANAGER.email)) >= 1)
    await eventually(lambda: len(sink.to(EMPLOYEE.email)) >= 3)  # opened, attest due, decision


async def test_reminder_then_escalation_up_the_chain_until_it_ends(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    handle, case = await start(time_skipping_env.client, worker.task_queue, new_case(fast_policy()))
    await time_skipping_env.sleep(timedelta(minutes=31))
    await eventually(lambda: event_kinds(engine, case.id).count("reminded") == 1)
    assert "escalated" not in event_kinds(engine, case.id)

    await time_skipping_env.sleep(timedelta(minutes=30))  # due: the manager's manager
    await eventually(lambda: len(events(engine, case.id, "escalated")) == 1)
    await time_skipping_env.sleep(timedelta(hours=1))  # one level further
    await eventually(lambda: len(events(engine, case.id, "escalated")) == 2)
    await time_skipping_env.sleep(timedelta(hours=1))  # the chain ends at the CEO
    await eventually(lambda: "escalation_chain_ended" in event_kinds(engine, case.id))
    escalated = events(engine, case.id, "escalated")
    assert [(e.data["to"], e.data["level"]) for e in escalated] == [
        ("director@dwp.gov.uk", 1),
        ("ceo@dwp.gov.uk", 2),
    ]
    snapshot: CaseSnapshot = await handle.query("snapshot", result_type=CaseSnapshot)
    assert snapshot.overdue and snapshot.escalation_level == 2
    await eventually(lambda: len(sink.to("ceo@dwp.gov.uk")) == 1)
    await eventually(lambda: len(sink.to("director@dwp.gov.uk")) == 1)

    # Acting stops the clock at once: nothing more is sent however long we wait.
    case = await act(handle, MANAGER, "endorse")
    assert (case.overdue, case.escalation_level) == (False, 0)
    await time_skipping_env.sleep(timedelta(hours=3))
    assert len(events(engine, case.id, "escalated")) == 2


async def test_waiting_on_the_requester_stops_the_clock_and_lapses(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    handle, case = await start(time_skipping_env.client, worker.task_queue, new_case(fast_policy()))
    await act(handle, MANAGER, "endorse")
    before = await act(handle, OFFICER, "request_info", question="Which team?")
    assert (before.stage, before.owner) == (ipa.AWAITING_INFO, EMPLOYEE.email)
    await time_skipping_env.sleep(timedelta(days=1))
    after = await act(handle, EMPLOYEE, "provide_info", answer="Jobcentre outreach")
    assert after.stage == ipa.SAC_REVIEW
    assert after.due_at is not None

    await act(handle, OFFICER, "request_info", question="And the handle?")
    await time_skipping_env.sleep(timedelta(days=6))
    result = await handle.result()
    assert (result.status, result.outcome) == ("closed", "lapsed")
    assert event_kinds(engine, case.id)[-1] == "closed"


async def test_sac_review_due_time_moves_by_the_time_spent_waiting(
    time_skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    policy = fast_policy()
    policy.stages[ipa.TYPE][ipa.SAC_REVIEW].sla = "P3D"
    policy.stages[ipa.TYPE][ipa.SAC_REVIEW].remind = "P2D"
    handle, _ = await start(time_skipping_env.client, worker.task_queue, new_case(policy))
    reviewing = await act(handle, MANAGER, "endorse")
    await act(handle, OFFICER, "request_info", question="Which team?")
    await time_skipping_env.sleep(timedelta(days=2))
    resumed = await act(handle, EMPLOYEE, "provide_info", answer="Outreach")
    assert reviewing.due_at is not None and resumed.due_at is not None
    waited = resumed.due_at - reviewing.due_at
    assert timedelta(days=2) <= waited < timedelta(days=2, minutes=5)


@pytest.mark.parametrize(
    ("actor", "action", "fields", "code"),
    [
        (EMPLOYEE, "endorse", {}, "forbidden"),  # only the requester's manager
        (OFFICER, "endorse", {}, "forbidden"),
        (OFFICER, "approve", {}, "conflict"),  # not in sac_review yet
        (MANAGER, "decline", {}, "invalid"),  # reason is required
        (MANAGER, "attest", {}, "conflict"),
        (MANAGER, "fly", {}, "invalid"),
        (EMPLOYEE, "reassign", {"assignee": "officer@dwp.gov.uk"}, "forbidden"),
    ],
)
async def test_refused_actions_name_the_reason_and_change_nothing(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    actor: object,
    action: str,
    fields: dict[str, object],
    code: str,
) -> None:
    handle, _ = await start(time_skipping_env.client, worker.task_queue, new_case(shipped_policy()))
    error = await refused_changing_nothing(engine, handle, actor, action, **fields)  # type: ignore[arg-type]
    assert error.type == code


async def test_the_sac_lead_may_reassign_and_anyone_who_sees_it_may_comment(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    handle, _ = await start(time_skipping_env.client, worker.task_queue, new_case(shipped_policy()))
    await act(handle, MANAGER, "endorse")
    case = await act(handle, SAC_LEAD, "reassign", assignee="officer2@dwp.gov.uk")
    assert (case.assignee, case.owner) == ("officer2@dwp.gov.uk", "officer2@dwp.gov.uk")
    case = await act(handle, ADMIN, "reassign", assignee="officer@dwp.gov.uk")
    case = await act(handle, EMPLOYEE, "comment", text="Any news?")
    assert event_kinds(engine, case.id)[-3:] == ["reassign", "reassign", "comment"]


@pytest.mark.parametrize(
    ("action", "fields", "outcome"),
    [("withdraw", {}, ipa.WITHDRAWN), ("reject", {"reason": "No business need"}, ipa.REJECTED)],
)
async def test_closing_before_active(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    action: str,
    fields: dict[str, str],
    outcome: str,
) -> None:
    handle, _ = await start(time_skipping_env.client, worker.task_queue, new_case(shipped_policy()))
    await act(handle, MANAGER, "endorse")
    actor = EMPLOYEE if action == "withdraw" else OFFICER
    case = await act(handle, actor, action, **fields)
    assert (case.status, case.outcome) == ("closed", outcome)
    assert (await handle.result()).outcome == outcome


async def test_no_line_manager_goes_straight_to_the_sac(
    time_skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    _, case = await start(
        time_skipping_env.client,
        worker.task_queue,
        new_case(shipped_policy(), manager=""),
    )
    assert case.stage == ipa.SAC_REVIEW


async def test_personal_device_waits_for_an_exception(
    time_skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    details = {**new_case(shipped_policy()).case.details, "device": "personal"}
    handle, _ = await start(
        time_skipping_env.client,
        worker.task_queue,
        new_case(shipped_policy(), details=details),
    )
    await act(handle, MANAGER, "endorse")
    case = await act(handle, OFFICER, "approve")
    assert case.stage == ipa.AWAITING_EXCEPTION
    # ... on a policy exception it raised itself (5.1): see test_exception.py.
    [link] = case.links
    assert link.relation == ipa.EXCEPTION and link.id.startswith("PEX-")


async def test_a_stage_entered_by_an_action_is_chased_in_working_days(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    # The shipped policy counts working days, planned by a local activity while the
    # action is recorded: the new stage's clock must still run.
    handle, case = await start(
        time_skipping_env.client, worker.task_queue, new_case(shipped_policy())
    )
    reviewing = await act(handle, MANAGER, "endorse")
    assert reviewing.due_at is not None
    await time_skipping_env.sleep(reviewing.due_at - reviewing.updated_at + timedelta(hours=1))
    await eventually(lambda: len(events(engine, case.id, "escalated")) >= 1)
    reminded = events(engine, case.id, "reminded")
    assert [e.stage for e in reminded] == [ipa.SAC_REVIEW]
    first = events(engine, case.id, "escalated")[0]
    assert (first.stage, first.data["to"], first.data["level"]) == (
        ipa.SAC_REVIEW,
        SAC_LEAD.email,
        1,
    )
