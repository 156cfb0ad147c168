"""A new policy reaches an open case: its clock is re-planned from the stage's start, on
the time-skipping server with real activities, database and SMTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from app.service.audit import verify
from domain.calendar import WorkingCalendar
from domain.policy import Policy
from models import Case
from tests.fixtures_temporal import SmtpSink, eventually
from tests.workflows import referral_helpers as dis_helpers
from tests.workflows.ipa_helpers import (
    MANAGER,
    OFFICER,
    act,
    event_kinds,
    events,
    fast_policy,
    load_people,
    new_case,
    shipped_policy,
    start,
)
from workflows import ipa_types as ipa
from workflows import referral_types as dis
from workflows.common import (
    CaseSnapshot,
    CaseState,
    PolicyChange,
    PolicyChangeResult,
    PolicyPreview,
)
from workflows.registry import POLICY_PREVIEW_QUERY, POLICY_UPDATE, SNAPSHOT_QUERY

ENGLAND = WorkingCalendar()
LONDON = ZoneInfo("Europe/London")

DIRECTOR, CEO = "director@dwp.gov.uk", "ceo@dwp.gov.uk"


@pytest.fixture(autouse=True)
def people(engine: Engine) -> None:
    load_people(engine)


async def change(handle: WorkflowHandle[Any, Any], policy: Policy) -> PolicyChangeResult:
    return await handle.execute_update(
        POLICY_UPDATE, PolicyChange(policy.for_case(ipa.TYPE)), result_type=PolicyChangeResult
    )


def row(engine: Engine, case_id: str) -> Case:
    with Session(engine) as session:
        found = session.get(Case, case_id)
        assert found is not None
        return found


async def test_a_shortened_sla_makes_a_case_overdue_and_escalate_on_the_new_schedule(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    lenient = fast_policy(sla="P10D", remind="P5D", escalate_every="P2D")
    strict = replace(
        fast_policy(sla="PT1H", remind="PT30M", escalate_every="PT1H"), version="strict"
    )
    handle, case = await start(time_skipping_env.client, worker.task_queue, new_case(lenient))
    assert case.due_at == case.opened_at + timedelta(days=10)

    await time_skipping_env.sleep(timedelta(hours=2))
    assert "reminded" not in event_kinds(engine, case.id)
    result = await change(handle, strict)
    assert (result.old_version, result.new_version) == (lenient.version, "strict")
    assert result.old_due == case.opened_at + timedelta(days=10)
    assert result.new_due == case.opened_at + timedelta(hours=1)  # from the stage's start

    # Past its new due time already: reminded, then overdue to the manager's manager.
    await eventually(lambda: "escalated" in event_kinds(engine, case.id))
    kinds = event_kinds(engine, case.id)
    assert kinds[kinds.index("policy_changed") :] == ["policy_changed", "reminded", "escalated"]
    (recorded,) = events(engine, case.id, "policy_changed")
    assert recorded.actor == "system"
    assert recorded.data["from_version"] == lenient.version
    assert recorded.data["to_version"] == "strict"
    assert recorded.data["new_due"] == (case.opened_at + timedelta(hours=1)).isoformat()
    assert [e.data["to"] for e in events(engine, case.id, "escalated")] == [DIRECTOR]
    stored = row(engine, case.id)
    assert (stored.policy_version, stored.overdue, stored.escalation_level) == ("strict", True, 1)

    # The new escalate_every (an hour, not two days) sets the next step up.
    await time_skipping_env.sleep(timedelta(hours=1, minutes=1))
    await eventually(lambda: len(events(engine, case.id, "escalated")) == 2)
    assert [e.data["to"] for e in events(engine, case.id, "escalated")] == [DIRECTOR, CEO]
    await eventually(lambda: any("overdue" in s.lower() for s in sink.subjects(CEO)))

    # The same version again changes nothing, and records nothing.
    again = await change(handle, strict)
    assert not again.changed and again.new_due == again.old_due
    assert len(events(engine, case.id, "policy_changed")) == 1
    with Session(engine) as session:
        assert verify(session, case.id).ok
    await act(handle, MANAGER, "endorse")


async def test_a_bank_holiday_added_moves_a_working_day_due_time(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    shipped = shipped_policy()
    handle, case = await start(time_skipping_env.client, worker.task_queue, new_case(shipped))
    sla = shipped.stages[ipa.TYPE][ipa.MANAGER_ENDORSEMENT].sla
    assert sla == "3wd" and case.due_at == ENGLAND.add(case.opened_at, sla)
    # A one-off bank holiday on the first working day after the case opened.
    day = ENGLAND.next_working_day(ENGLAND.local_date(case.opened_at))
    holiday = replace(shipped, version="holiday", extra_holidays=(day.isoformat(),))
    with_holiday = WorkingCalendar.of("GB-ENG", [day.isoformat()])
    expected = with_holiday.add(case.opened_at, sla)
    assert expected > case.due_at

    # The dry run's plan, counted by the same calendar, says where it will go ...
    preview = await handle.query(
        POLICY_PREVIEW_QUERY, holiday.for_case(ipa.TYPE), result_type=PolicyPreview
    )
    assert preview.version == shipped.version and preview.due_at == case.due_at
    assert preview.plan is not None and preview.plan.due == "3wd"
    assert with_holiday.add(preview.plan.start, "3wd") == expected
    # ... and nothing moved for asking.
    snapshot = await handle.query(SNAPSHOT_QUERY, result_type=CaseSnapshot)
    assert snapshot.policy_version == shipped.version and snapshot.due_at == case.due_at

    result = await change(handle, holiday)
    assert (result.old_due, result.new_due) == (case.due_at, expected)
    stored = row(engine, case.id)
    assert (stored.due_at, stored.policy_version) == (expected, "holiday")
    # The reminder moved with it (2wd, counted past the holiday).
    await time_skipping_env.sleep(expected - case.opened_at - timedelta(hours=1))
    assert "escalated" not in event_kinds(engine, case.id)
    assert "reminded" in event_kinds(engine, case.id)
    await act(handle, MANAGER, "endorse")


async def test_an_unanswered_question_lapses_on_the_new_policy(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    lenient = fast_policy(sla="P10D", remind="P5D")
    handle, case = await start(time_skipping_env.client, worker.task_queue, new_case(lenient))
    await act(handle, MANAGER, "endorse")
    case = await act(handle, OFFICER, "request_info", question="Which events?")
    assert case.stage == ipa.AWAITING_INFO
    lapse_before = case.due_at
    quicker = replace(fast_policy(sla="P10D", remind="P5D"), version="quicker")
    quicker.stages[ipa.TYPE]["awaiting_info"].extra["lapse"] = "P3D"
    quicker.stages[ipa.TYPE]["awaiting_info"].remind = "P1D"
    result = await change(handle, quicker)
    assert lapse_before is not None and result.new_due == lapse_before - timedelta(days=2)
    await time_skipping_env.sleep(timedelta(days=3, minutes=1))
    await eventually(lambda: "closed" in event_kinds(engine, case.id))
    assert row(engine, case.id).outcome == "lapsed"


async def test_a_hearing_date_an_action_set_stays(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    dis_helpers.load_people(engine)
    lenient = dis_helpers.fast_policy()
    handle, case = await dis_helpers.start(
        time_skipping_env.client, worker.task_queue, dis_helpers.new_referral(lenient)
    )
    await act(handle, dis_helpers.HR, "accept", caseworker=dis_helpers.CASEWORKER.email)
    day = (case.opened_at + timedelta(days=14)).date()
    case = await act(handle, dis_helpers.CASEWORKER, "schedule_hearing", on=day.isoformat())
    hearing_due = case.due_at
    strict = replace(dis_helpers.fast_policy(), version="strict")
    strict.stages[dis.TYPE][dis.HEARING].sla = "P1D"
    result = await handle.execute_update(
        POLICY_UPDATE, PolicyChange(strict.for_case(dis.TYPE)), result_type=PolicyChangeResult
    )
    assert result.changed and result.new_due == result.old_due == hearing_due
    assert row(engine, case.id).policy_version == "strict"
    (recorded,) = events(engine, case.id, "policy_changed")
    assert recorded.data["old_due"] == recorded.data["new_due"]


@pytest.mark.todays("winter_weekday", "summer_weekday")
async def test_a_case_from_before_local_time_keeps_its_due_time_until_the_policy_is_applied(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    """A case that was running when local time shipped counts on the rules it recorded
    (UTC dates, the start's time of day); applying the policy re-times it to 17:00."""
    shipped = shipped_policy()
    inp = new_case(shipped)
    inp.state = CaseState(case=inp.case, local_time=False)  # as replay leaves such a case
    handle, case = await start(time_skipping_env.client, worker.task_queue, inp)
    utc_rules = WorkingCalendar(zone=None)
    assert case.due_at == utc_rules.add(case.opened_at, "3wd")
    assert case.due_at is not None and case.due_at.time() == case.opened_at.time()

    endorsed = await act(handle, MANAGER, "endorse")  # a later stage: still the old rules
    assert endorsed.due_at is not None
    # (the stage began a moment before the case row was written)
    assert abs(endorsed.due_at - utc_rules.add(endorsed.updated_at, "5wd")) < timedelta(seconds=1)

    applied = await change(handle, replace(shipped, version="applied"))
    assert applied.old_due == endorsed.due_at
    assert applied.new_due == ENGLAND.add(endorsed.updated_at, "5wd")
    assert applied.new_due is not None and applied.new_due.astimezone(LONDON).hour == 17
    # From then on, every stage it enters counts in London time too.
    asked = await act(handle, OFFICER, "request_info", question="Which events?")
    assert asked.due_at == ENGLAND.add(asked.updated_at, "10wd")
