"""Working-day clocks on the days a calendar bug would show: every case type's first
stage opened on each chosen "today" of tests/today.py (a Saturday, Easter Monday, a
Scottish bank holiday, the last working day of the year, 29 February, both days the
clocks change, just after midnight in summer), on the time-skipping server.

Whatever the day, a working-day stage is due at 17:00 London time on a working day,
reminds and escalates at 17:00 too, and a hearing's day is London's day.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.calendar import WorkingCalendar
from tests import today as todays
from tests.fixtures_temporal import eventually
from tests.today import london_date
from tests.workflows import exception_helpers as pex_helpers
from tests.workflows import investigation_helpers as abu_helpers
from tests.workflows import ipa_helpers, referral_helpers
from tests.workflows.helpers import act, events, shipped_policy, start
from workflows import ipa_types as ipa
from workflows import referral_types as dis
from workflows.common import CaseInput

LONDON = ZoneInfo("Europe/London")
ENGLAND = WorkingCalendar()
EVERY_DAY = tuple(todays.TODAYS)


def at_five_on_a_working_day(instant: datetime | None) -> datetime:
    assert instant is not None
    local = instant.astimezone(LONDON)
    assert local.time() == time(17), local
    assert ENGLAND.is_working_day(local.date()), local
    return instant


@pytest.fixture(autouse=True)
def people(engine: Engine) -> None:
    ipa_helpers.load_people(engine)
    referral_helpers.load_people(engine)
    abu_helpers.load_people(engine)


def first_stages() -> dict[str, CaseInput]:
    shipped = shipped_policy()
    return {
        "ipa": ipa_helpers.new_case(shipped),
        "exception": pex_helpers.new_exception(shipped),
        "investigation": abu_helpers.new_investigation(shipped),
        "referral": referral_helpers.new_referral(shipped),
    }


@pytest.mark.todays(*EVERY_DAY)
async def test_every_first_stage_is_due_at_five_london_time(
    time_skipping_env: WorkflowEnvironment, worker: Worker, today: datetime
) -> None:
    for name, inp in first_stages().items():
        _, case = await start(time_skipping_env.client, worker.task_queue, inp)
        assert abs(case.opened_at - today) < timedelta(minutes=5), name  # on the chosen day
        sla = shipped_policy().stages[case.type][case.stage].sla
        assert sla is not None and sla.endswith("wd"), name
        assert case.due_at == at_five_on_a_working_day(ENGLAND.add(case.opened_at, sla)), name
        assert case.due_at > case.opened_at


@pytest.mark.todays("saturday", "clocks_go_forward", "clocks_go_back", "last_working_day_of_year")
async def test_the_reminder_and_the_escalation_come_at_five(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    handle, case = await start(
        time_skipping_env.client, worker.task_queue, ipa_helpers.new_case(shipped_policy())
    )
    assert case.due_at is not None
    # Past the due time (3wd) and the first escalation after it (2wd on from then).
    await time_skipping_env.sleep(case.due_at - case.opened_at + timedelta(minutes=1))
    await eventually(lambda: bool(events(engine, case.id, "escalated")))
    reminded = events(engine, case.id, "reminded")[0]
    escalated = events(engine, case.id, "escalated")[0]
    # A timer fires a moment after its time: to the second.
    expected = at_five_on_a_working_day(ENGLAND.add(case.opened_at, "2wd"))
    assert abs(reminded.at - expected) < timedelta(seconds=1)
    assert abs(escalated.at - case.due_at) < timedelta(seconds=1)
    snapshot = await act(handle, ipa_helpers.MANAGER, "comment", text="Looking now")
    assert (snapshot.overdue, snapshot.escalation_level) == (True, 1)
    # Endorsed: SAC's review is due five working days from today, at five.
    endorsed = await act(handle, ipa_helpers.MANAGER, "endorse")
    assert endorsed.stage == ipa.SAC_REVIEW
    assert endorsed.due_at == at_five_on_a_working_day(ENGLAND.add(endorsed.updated_at, "5wd"))


@pytest.mark.todays("summer_after_midnight", "winter_weekday")
async def test_a_hearing_is_on_a_london_day(
    time_skipping_env: WorkflowEnvironment, worker: Worker, today: datetime
) -> None:
    handle, _ = await start(
        time_skipping_env.client,
        worker.task_queue,
        referral_helpers.new_referral(shipped_policy()),
    )
    await act(handle, referral_helpers.HR, "accept", caseworker=referral_helpers.CASEWORKER.email)
    caseworker = referral_helpers.CASEWORKER
    # Yesterday in London is past, even where UTC's date is still yesterday's.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await act(handle, caseworker, "schedule_hearing", on=london_date(-1))
    assert "on: the hearing cannot be in the past" in str(refused.value.cause)
    # Today in London is not, and the hearing is due by London's midnight.
    case = await act(handle, caseworker, "schedule_hearing", on=london_date(0))
    assert case.stage == dis.HEARING
    midnight = datetime.combine(today.astimezone(LONDON).date() + timedelta(days=1), time(0))
    assert case.due_at == midnight.replace(tzinfo=LONDON).astimezone(UTC)
