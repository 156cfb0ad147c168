"""The disciplinary referral workflow on the time-skipping server, with real activities,
database and SMTP; and the service layer's confidentiality on a real referral."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from email.message import Message
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from app import service
from app.platform.db import session_factory
from app.platform.settings import Settings
from app.service.audit import verify
from app.service.errors import Forbidden, NotFound
from app.service.services import Services
from domain import times
from domain.policy import load_policy
from domain.views import PARTIAL_FIELDS
from models import Case
from tests.app.conftest import start_numbering_afresh
from tests.fixtures_temporal import SmtpSink, eventually
from tests.today import london_date
from tests.workflows.helpers import (
    act,
    event_kinds,
    events,
    refusal,
    refused_changing_nothing,
    start,
)
from tests.workflows.referral_helpers import (
    ADMIN,
    AUDITOR,
    BREACH,
    CASEWORKER,
    CASEWORKER2,
    DETAILS,
    HR,
    HR_LEAD,
    OUTSIDER,
    SUBJECT,
    fast_policy,
    load_people,
    new_referral,
    policy,
)
from workflows import referral_types as dis
from workflows.common import Actor, CaseSnapshot

LONDON = ZoneInfo("Europe/London")


@pytest.fixture(autouse=True)
def people(engine: Engine) -> None:
    load_people(engine)


def text_of(message: Message) -> str:
    """The plain-text part of a received mail, decoded."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text part")


def end_of(day: date) -> datetime:
    """The end of a hearing's day: midnight in London, as UTC."""
    return datetime.combine(day + timedelta(days=1), time.min, LONDON).astimezone(UTC)


def no_details_mailed(sink: SmtpSink) -> None:
    """Confidential: no mail names the subject or says what they are accused of (the
    subject's own mail, of their outcome and appeal, is addressed to them)."""
    for message in sink.messages:
        text = message.as_string()
        assert BREACH not in text and "6.2, 6.4" not in text
        if SUBJECT.email not in str(message["To"]):
            assert SUBJECT.email not in text


async def test_whole_life_of_a_referral_to_a_dismissed_appeal(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    shipped = policy()
    handle, case = await start(time_skipping_env.client, worker.task_queue, new_referral(shipped))
    assert (case.stage, case.owner, case.status) == (dis.HR_REVIEW, None, "open")
    assert case.confidential and case.parties["subject"] == SUBJECT.email
    assert case.details["criminal_consideration"] is True
    assert case.due_at is not None

    case = await act(handle, HR, "accept", caseworker=CASEWORKER.email)
    assert (case.stage, case.owner, case.assignee) == (
        dis.HEARING,
        CASEWORKER.email,
        CASEWORKER.email,
    )
    assert case.parties["caseworker"] == CASEWORKER.email

    hearing_day = (case.updated_at + timedelta(days=14)).date()
    case = await act(handle, CASEWORKER, "schedule_hearing", on=hearing_day.isoformat())
    assert case.due_at == end_of(hearing_day)
    case = await act(handle, CASEWORKER, "comment", text="Union rep attending")
    case = await act(
        handle, CASEWORKER, "record_outcome", outcome=dis.FINAL_WRITTEN_WARNING, reason="Proven"
    )
    # Open, and waiting on the subject's appeal: the outline shows what would be appealed.
    assert (case.stage, case.status, case.outcome) == (
        dis.APPEAL_WINDOW,
        "open",
        "final_written_warning",
    )
    assert case.owner == SUBJECT.email
    window_ends = case.due_at
    assert window_ends is not None

    case = await act(handle, SUBJECT, "appeal", grounds="The account was hacked")
    assert (case.stage, case.owner) == (dis.APPEAL, None)
    case = await act(handle, HR_LEAD, "decide_appeal", upheld=False, reason="No evidence of it")
    assert (case.status, case.outcome) == ("closed", dis.FINAL_WRITTEN_WARNING)
    assert (await handle.result()).outcome == dis.FINAL_WRITTEN_WARNING

    assert event_kinds(engine, case.id) == [
        "opened",
        "criminal_consideration",
        "accept",
        "schedule_hearing",
        "comment",
        "record_outcome",
        "appeal",
        "decide_appeal",
        "closed",
    ]
    flagged = events(engine, case.id, "criminal_consideration")[0]
    assert (flagged.actor, flagged.data) == ("system", {"policy": "6.2"})
    closed = events(engine, case.id, "closed")[0].data
    assert closed == {
        "outcome": "final_written_warning",
        "reason": "No evidence of it",
        "appeal": "dismissed",
    }
    with Session(engine) as session:
        assert verify(session, case.id).ok
    await eventually(lambda: len(sink.to(CASEWORKER.email)) >= 1)  # the hearing is theirs
    await eventually(lambda: len(sink.to(HR.email)) >= 2)  # opened; decision
    # The subject is told once: the outcome, and until when (local time) they may appeal.
    await eventually(lambda: len(sink.to(SUBJECT.email)) >= 1)
    (told,) = sink.to(SUBJECT.email)
    assert "how to appeal" in str(told["Subject"])
    body = " ".join(text_of(told).split())
    assert "final written warning" in body
    assert f"until {times.long(window_ends, LONDON)}" in body
    no_details_mailed(sink)


@pytest.mark.parametrize(("upheld", "outcome"), [(True, dis.OVERTURNED), (False, dis.DISMISSAL)])
async def test_an_appeal_upheld_overturns_and_one_dismissed_keeps_the_outcome(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    smtp_sink: tuple[SmtpSink, int],
    upheld: bool,
    outcome: str,
) -> None:
    sink, _ = smtp_sink
    handle, _ = await start(time_skipping_env.client, worker.task_queue, new_referral(policy()))
    await act(handle, HR_LEAD, "accept", caseworker=CASEWORKER.email)
    await act(
        handle, CASEWORKER, "record_outcome", outcome=dis.DISMISSAL, reason="Gross misconduct"
    )
    await eventually(lambda: len(sink.to(HR_LEAD.email)) == 1)  # the HR queue's, at opening
    appealed = await act(handle, SUBJECT, "appeal", grounds="Too harsh")
    assert (appealed.stage, appealed.owner) == (dis.APPEAL, None)
    # The appeal is told to the HR leads, who decide it, and to no one else in HR.
    await eventually(lambda: len(sink.to(HR_LEAD.email)) == 2)
    assert str(sink.to(HR_LEAD.email)[-1]["To"]) == HR_LEAD.email
    case = await act(handle, HR_LEAD, "decide_appeal", upheld=upheld, reason="Considered")
    assert (case.status, case.stage, case.outcome) == ("closed", "closed", outcome)


async def test_no_case_to_answer_closes_it(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    handle, _ = await start(time_skipping_env.client, worker.task_queue, new_referral(policy()))
    case = await act(handle, HR, "no_case_to_answer", reason="Account not the subject's")
    assert (case.status, case.outcome) == ("closed", dis.NO_CASE_TO_ANSWER)
    assert event_kinds(engine, case.id)[-2:] == ["no_case_to_answer", "closed"]


async def test_no_action_closes_at_once_with_no_appeal_window(
    time_skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle, _ = await start(time_skipping_env.client, worker.task_queue, new_referral(policy()))
    await act(handle, HR, "accept", caseworker=CASEWORKER.email)
    case = await act(handle, CASEWORKER, "record_outcome", outcome=dis.NO_ACTION, reason="Advice")
    assert (case.status, case.outcome) == ("closed", dis.NO_ACTION)
    assert (await handle.result()).outcome == dis.NO_ACTION


async def test_the_appeal_window_running_out_closes_with_the_recorded_outcome(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    shipped = fast_policy()
    handle, _ = await start(time_skipping_env.client, worker.task_queue, new_referral(shipped))
    await act(handle, HR, "accept", caseworker=CASEWORKER.email)
    waiting = await act(
        handle, CASEWORKER, "record_outcome", outcome=dis.FIRST_WRITTEN_WARNING, reason="Proven"
    )
    assert waiting.due_at == waiting.updated_at + timedelta(days=5)  # appeal_window.sla
    await time_skipping_env.sleep(timedelta(days=4))
    case: CaseSnapshot = await handle.query("snapshot", result_type=CaseSnapshot)
    assert case.stage == dis.APPEAL_WINDOW
    await time_skipping_env.sleep(timedelta(days=2))
    result = await handle.result()
    assert (result.status, result.outcome) == ("closed", dis.FIRST_WRITTEN_WARNING)
    closed = events(engine, result.id, "closed")[0].data
    assert closed["reason"] == "the appeal window ended without an appeal"
    kinds = event_kinds(engine, result.id)
    assert "escalated" not in kinds and "reminded" not in kinds
    with pytest.raises(RPCError):  # too late to appeal: the case is over
        await act(handle, SUBJECT, "appeal", grounds="Late")
    # Told once, when the outcome was recorded; never of the window closing.
    assert len(sink.to(SUBJECT.email)) == 1


async def test_scheduling_the_hearing_sets_its_due_time_and_late_ones_escalate_past_the_subject(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    handle, _ = await start(
        time_skipping_env.client, worker.task_queue, new_referral(fast_policy())
    )
    case = await act(handle, HR, "accept", caseworker=CASEWORKER.email)
    assert case.due_at == case.updated_at + timedelta(days=10)  # hearing.sla until scheduled

    first = (case.updated_at + timedelta(days=20)).date()
    case = await act(handle, CASEWORKER, "schedule_hearing", on=first.isoformat())
    assert case.due_at == end_of(first)
    later = first + timedelta(days=7)  # rescheduled: the due time moves with it
    case = await act(handle, CASEWORKER, "schedule_hearing", on=later.isoformat())
    assert (case.due_at, case.overdue) == (end_of(later), False)

    # Past the old SLA and the first date, nothing: the hearing is not yet due.
    await time_skipping_env.sleep(end_of(first) - case.updated_at + timedelta(hours=1))
    assert events(engine, case.id, "escalated") == []
    # A day after the hearing with no outcome: the caseworker's manager is the subject,
    # so the chain skips them (a conflict of interest) to the director, then the CEO.
    await time_skipping_env.sleep(end_of(later) - end_of(first) + timedelta(days=1, hours=1))
    await eventually(lambda: len(events(engine, case.id, "escalated")) == 2)
    escalated = [
        (e.data["to"], e.data["level"], e.data["skipped"])
        for e in events(engine, case.id, "escalated")
    ]
    assert escalated == [
        ("director@dwp.gov.uk", 1, [SUBJECT.email]),
        ("ceo@dwp.gov.uk", 2, [SUBJECT.email]),
    ]
    await eventually(lambda: len(sink.to("ceo@dwp.gov.uk")) == 1)
    assert sink.to(SUBJECT.email) == []
    no_details_mailed(sink)
    after = await act(handle, CASEWORKER, "record_outcome", outcome=dis.DISMISSAL, reason="Proven")
    assert (after.overdue, after.escalation_level) == (False, 0)


async def test_a_late_review_escalates_from_the_hr_lead_and_never_reaches_the_subject(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    _, case = await start(time_skipping_env.client, worker.task_queue, new_referral(fast_policy()))
    await time_skipping_env.sleep(timedelta(hours=4, minutes=1))
    await eventually(lambda: len(events(engine, case.id, "escalated")) == 3)
    assert [e.data["to"] for e in events(engine, case.id, "escalated")] == [
        HR_LEAD.email,
        "director@dwp.gov.uk",
        "ceo@dwp.gov.uk",
    ]
    assert event_kinds(engine, case.id).count("reminded") == 1
    await eventually(lambda: len(sink.to(HR.email)) >= 2)  # the queue: action needed, reminder
    assert sink.to(SUBJECT.email) == []
    no_details_mailed(sink)


async def test_the_workflow_names_the_subject_from_the_details_when_the_raiser_did_not(
    time_skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    inp = new_referral(policy(), subject_party=False)
    handle, case = await start(time_skipping_env.client, worker.task_queue, inp)
    assert case.parties["subject"] == SUBJECT.email
    await act(handle, HR, "accept", caseworker=CASEWORKER.email)
    await act(handle, CASEWORKER, "record_outcome", outcome=dis.DISMISSAL, reason="Proven")
    case = await act(handle, SUBJECT, "appeal", grounds="Unfair")
    assert case.stage == dis.APPEAL


async def test_reassigning_the_hearing_hands_it_to_a_new_caseworker(
    time_skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle, _ = await start(time_skipping_env.client, worker.task_queue, new_referral(policy()))
    await act(handle, HR, "accept", caseworker=CASEWORKER.email)
    case = await act(handle, HR_LEAD, "reassign", assignee=CASEWORKER2.email)
    assert (case.owner, case.assignee, case.parties["caseworker"]) == (CASEWORKER2.email,) * 3
    error = await refusal(
        act(handle, CASEWORKER, "record_outcome", outcome="no_action", reason="x")
    )
    assert error.type == "forbidden"
    case = await act(handle, CASEWORKER2, "record_outcome", outcome=dis.NO_ACTION, reason="Advice")
    assert case.outcome == dis.NO_ACTION


HR_REVIEW_REFUSALS: list[tuple[Actor, str, dict[str, Any], str]] = [
    (OUTSIDER, "accept", {"caseworker": CASEWORKER.email}, "forbidden"),
    (SUBJECT, "no_case_to_answer", {"reason": "Not me"}, "forbidden"),
    (AUDITOR, "comment", {"text": "Noted"}, "forbidden"),  # auditors change nothing
    (HR, "accept", {"caseworker": SUBJECT.email}, "invalid"),  # conflict of interest
    (HR, "accept", {}, "invalid"),
    (HR, "no_case_to_answer", {}, "invalid"),
    (HR, "reassign", {"assignee": CASEWORKER.email}, "forbidden"),  # the lead's
    (HR_LEAD, "reassign", {"assignee": SUBJECT.email}, "invalid"),
    (HR, "schedule_hearing", {"on": london_date(30)}, "conflict"),
    (SUBJECT, "appeal", {"grounds": "Early"}, "conflict"),
]
HEARING_REFUSALS: list[tuple[Actor, str, dict[str, Any], str]] = [
    (HR, "schedule_hearing", {"on": london_date(30)}, "forbidden"),  # the caseworker's
    (CASEWORKER, "schedule_hearing", {"on": london_date(-1)}, "invalid"),  # yesterday
    (CASEWORKER, "schedule_hearing", {"on": "next week"}, "invalid"),
    (CASEWORKER, "record_outcome", {"outcome": "suspension", "reason": "x"}, "invalid"),
    (CASEWORKER, "record_outcome", {"outcome": "dismissal"}, "invalid"),
    (HR_LEAD, "record_outcome", {"outcome": "dismissal", "reason": "x"}, "forbidden"),
    (HR_LEAD, "decide_appeal", {"upheld": True, "reason": "x"}, "conflict"),
]


@pytest.mark.parametrize(
    ("stage", "actor", "action", "fields", "code"),
    [(dis.HR_REVIEW, *r) for r in HR_REVIEW_REFUSALS]
    + [(dis.HEARING, *r) for r in HEARING_REFUSALS],
)
async def test_refused_actions_name_the_reason_and_change_nothing(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    stage: str,
    actor: Actor,
    action: str,
    fields: dict[str, Any],
    code: str,
) -> None:
    handle, _ = await start(time_skipping_env.client, worker.task_queue, new_referral(policy()))
    if stage == dis.HEARING:
        await act(handle, HR, "accept", caseworker=CASEWORKER.email)
    error = await refused_changing_nothing(engine, handle, actor, action, **fields)
    assert error.type == code


async def test_the_caseworker_may_not_decide_the_appeal_of_their_own_hearing(
    time_skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle, _ = await start(time_skipping_env.client, worker.task_queue, new_referral(policy()))
    await act(handle, HR, "accept", caseworker=HR_LEAD.email)
    await act(handle, HR_LEAD, "record_outcome", outcome=dis.DISMISSAL, reason="Proven")
    await act(handle, SUBJECT, "appeal", grounds="Unfair")
    error = await refusal(act(handle, HR_LEAD, "decide_appeal", upheld=False, reason="x"))
    assert error.type == "forbidden"


# ---- the service layer: who may open a referral, and who sees how much of it ----------


@pytest.fixture
def services(
    settings: Settings, engine: Engine, temporal_client: Client, worker: Worker
) -> Services:
    sessions = session_factory(engine)
    start_numbering_afresh(sessions)
    return Services(
        settings=settings.model_copy(update={"task_queue": worker.task_queue}),
        sessions=sessions,
        client=temporal_client,
        policy=load_policy(settings.policy_file),
    )


async def open_referral(svc: Services, actor: Actor, **details: Any) -> dict[str, Any]:
    return await service.open_case(
        svc, actor=actor, case_type=dis.TYPE, details={**DETAILS, **details}
    )


async def svc_act(svc: Services, actor: Actor, case_id: str, action: str, **f: Any) -> Any:
    return await service.act(svc, actor=actor, case_id=case_id, action=action, fields=f)


async def test_only_hr_opens_a_referral_and_nobody_about_themselves(
    services: Services, engine: Engine
) -> None:
    for actor in (OUTSIDER, AUDITOR, ADMIN, SUBJECT):
        with pytest.raises(Forbidden, match="only HR"):
            await open_referral(services, actor)
    with pytest.raises(Forbidden, match="about themselves"):
        await open_referral(services, HR, subject=HR.email)
    with Session(engine) as session:
        assert session.scalars(select(Case)).all() == []  # nothing started
    opened = await open_referral(services, HR_LEAD, subject=" Subject@DWP.gov.uk ")
    assert opened["id"].startswith("DIS-") and opened["details"]["subject"] == SUBJECT.email


async def test_the_subject_sees_the_outline_others_nothing_and_hr_the_whole(
    services: Services,
) -> None:
    svc = services
    case_id = (await open_referral(svc, HR))["id"]
    await svc_act(svc, HR, case_id, "accept", caseworker=CASEWORKER2.email)

    outline = await service.get_case(svc, actor=SUBJECT, case_id=case_id)
    assert set(outline) == {*PARTIAL_FIELDS, "actions"} and outline["actions"] == []
    with pytest.raises(Forbidden):
        await service.case_events(svc, actor=SUBJECT, case_id=case_id)
    items, total = await service.list_cases(svc, actor=SUBJECT, q="claimant")
    assert (items, total) == ([], 0)  # a search of what the outline hides finds nothing
    items, _ = await service.list_cases(svc, actor=SUBJECT)
    assert [set(i) for i in items] == [{*PARTIAL_FIELDS, "actions"}]
    # At the hearing it does not wait on them: not in their "Waiting on me".
    assert (await service.list_cases(svc, actor=SUBJECT, assignee="me"))[1] == 0

    for outsider in (OUTSIDER, Actor("sirt@dwp.gov.uk", ["sirt", "sirt_lead"])):
        with pytest.raises(NotFound):
            await service.get_case(svc, actor=outsider, case_id=case_id)
        with pytest.raises(NotFound):
            await svc_act(svc, outsider, case_id, "comment", text="let me in")
        assert (await service.list_cases(svc, actor=outsider, type=dis.TYPE))[1] == 0

    for viewer in (HR, HR_LEAD, CASEWORKER2, AUDITOR, ADMIN):
        whole = await service.get_case(svc, actor=viewer, case_id=case_id)
        assert whole["details"]["breach"] == BREACH
        assert whole["details"]["criminal_consideration"] is True
        assert await service.case_events(svc, actor=viewer, case_id=case_id)

    after = await svc_act(
        svc, CASEWORKER2, case_id, "record_outcome", outcome=dis.DISMISSAL, reason="Proven"
    )
    assert after["stage"] == dis.APPEAL_WINDOW
    outline = await service.get_case(svc, actor=SUBJECT, case_id=case_id)
    assert (outline["outcome"], outline["actions"]) == (dis.DISMISSAL, ["appeal"])
    # While they may appeal: by when, and the case in their "Waiting on me".
    assert outline["due_at"] == after["due_at"] is not None
    mine, total = await service.list_cases(svc, actor=SUBJECT, assignee="me")
    assert ([i["id"] for i in mine], total) == ([case_id], 1)
    assert set(mine[0]) == {*PARTIAL_FIELDS, "due_at", "actions"}
    appealed = await svc_act(svc, SUBJECT, case_id, "appeal", grounds="Too harsh")
    assert set(appealed) == {*PARTIAL_FIELDS, "actions"} and appealed["stage"] == dis.APPEAL


async def test_a_subject_in_hr_may_not_accept_their_own_referral(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    inp = new_referral(policy(), details={**DETAILS, "subject": HR.email}, requester=HR_LEAD)
    handle, case = await start(time_skipping_env.client, worker.task_queue, inp)
    error = await refused_changing_nothing(
        engine, handle, HR, "accept", caseworker=CASEWORKER.email
    )
    assert (error.type, error.message) == (
        "forbidden",
        f"actor: {HR.email} is the subject of {case.id}, a party to it, and may not accept it"
        " (conflict of interest)",
    )
    accepted = await act(handle, HR_LEAD, "accept", caseworker=CASEWORKER.email)
    assert accepted.stage == dis.HEARING

    # HR's queue was told of it, but not the member of HR it is about.
    def queue_told() -> list[list[str]]:
        told = events(engine, case.id, "emailed")
        return [e.data["to"] for e in told if e.data["kind"] == "action_needed"]

    await eventually(lambda: len(queue_told()) == 2)
    assert sorted(queue_told()) == sorted(
        [sorted([CASEWORKER.email, CASEWORKER2.email, HR_LEAD.email]), [CASEWORKER.email]]
    )
