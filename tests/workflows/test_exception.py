"""The policy exception workflow on the time-skipping server, with real activities,
database and SMTP: its whole life, every branch, and its link with the IPA (5.1, 5.2)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from app.service.audit import verify
from domain.calendar import WorkingCalendar
from tests.fixtures_temporal import SmtpSink, eventually
from tests.workflows.exception_helpers import (
    OFFICER2,
    SAC_LEAD2,
    exception_policy,
    load_people,
    new_exception,
    personal_ipa,
    raised_exception,
    to_active,
    to_decision,
    working_days_before,
)
from tests.workflows.helpers import (
    act,
    event_kinds,
    events,
    refusal,
    refused_changing_nothing,
    row,
    shipped_policy,
    snapshot,
    start,
)
from tests.workflows.ipa_helpers import (
    ADMIN,
    EMPLOYEE,
    OFFICER,
    SAC_LEAD,
    new_case,
)
from workflows import exception_types as pex
from workflows import ipa_types as ipa
from workflows.common import Actor, Link


@pytest.fixture(autouse=True)
def people(engine: Engine) -> None:
    load_people(engine)


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def near(at: datetime | None, expected: datetime) -> bool:
    """A timer fires when it is due, give or take the server's rounding."""
    return at is not None and abs(at - expected) < timedelta(seconds=2)


async def test_whole_life_notice_extensions_and_expiry(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    policy = exception_policy()  # the shipped notice: 10 working days before expiry
    env = time_skipping_env
    handle, case = await start(env.client, worker.task_queue, new_exception(policy))
    assert (case.stage, case.owner, case.team) == (pex.TRIAGE, None, "sac")
    sla = policy.stages[pex.TYPE][pex.TRIAGE].sla
    assert sla is not None and case.due_at == WorkingCalendar().add(case.opened_at, sla)

    case = await act(handle, OFFICER, "accept")
    assert (case.stage, case.owner) == (pex.RISK_ASSESSMENT, None)
    case = await act(
        handle, OFFICER2, "submit_assessment", risk_rating="high", assessment="Acceptable"
    )
    assert (case.stage, case.owner) == (pex.DECISION, None)
    assert case.parties["assessor"] == OFFICER2.email
    case = await act(handle, SAC_LEAD, "approve")
    assert (case.stage, case.owner, case.status) == (pex.ACTIVE, EMPLOYEE.email, "open")

    # Active until duration_days after approval: that is the stage's due time.
    approval = events(engine, case.id, "approve")[0]
    approved_at = approval.at
    assert instant(approval.data["expires_at"]) == approved_at + timedelta(days=30)
    assert case.due_at == approved_at + timedelta(days=30)

    case = await act(handle, SAC_LEAD, "extend", days=10, reason="Fair season runs on")
    case = await act(handle, SAC_LEAD, "extend", days=5, reason="One more fair")
    expires_at = approved_at + timedelta(days=45)
    assert case.due_at == expires_at
    assert instant(events(engine, case.id, "extend")[-1].data["expires_at"]) == expires_at
    error = await refusal(act(handle, SAC_LEAD, "extend", days=1, reason="And another"))
    assert error.type == "conflict" and "at most 2" in error.message and "5.2" in error.message

    # The requester is told 10 working days before it expires, and not before.
    notice_at = working_days_before(expires_at, 10)
    await env.sleep(notice_at - approved_at - timedelta(hours=1))
    assert "expiry_notice" not in event_kinds(engine, case.id)
    await env.sleep(timedelta(hours=2))
    await eventually(lambda: "expiry_notice" in event_kinds(engine, case.id))
    notice = events(engine, case.id, "expiry_notice")[0]
    assert near(notice.at, notice_at)
    assert (notice.actor, notice.data) == (
        "system",
        {"expires_at": expires_at.isoformat(), "policy": "5.2"},
    )

    def told() -> bool:
        return any("Action needed on" in s for s in sink.subjects(EMPLOYEE.email))

    await eventually(told)
    [mail] = [m for m in sink.to(EMPLOYEE.email) if "Action needed" in str(m["Subject"])]
    [text] = [p for p in mail.walk() if p.get_content_type() == "text/plain"]
    body = text.get_payload(decode=True)
    assert isinstance(body, bytes) and b"extend it before it does" in body

    # At its expiry it closes: nobody is chased, nothing is escalated.
    await env.sleep(expires_at - notice_at)
    result = await handle.result()
    assert (result.status, result.outcome) == ("closed", pex.EXPIRED)
    assert near(result.closed_at, expires_at)
    kinds = event_kinds(engine, case.id)
    assert kinds[:5] == ["opened", "accept", "submit_assessment", "approve", "extend"]
    assert kinds[-2:] == ["expiry_notice", "closed"]
    assert "escalated" not in kinds and "reminded" not in kinds
    closed = events(engine, case.id, "closed")[0]
    assert closed.data["policy"] == "5.2" and "expired" in closed.data["reason"]
    with Session(engine) as session:
        assert verify(session, case.id).ok
    await eventually(lambda: any("expired" in s for s in sink.subjects(EMPLOYEE.email)))


async def test_an_exception_shorter_than_its_notice_is_noticed_at_once(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    policy = exception_policy(expiry_notice="P3D")
    handle, case = await start(
        time_skipping_env.client, worker.task_queue, new_exception(policy, duration_days=2)
    )
    case = await to_active(handle)
    await eventually(lambda: "expiry_notice" in event_kinds(engine, case.id))
    approved_at = events(engine, case.id, "approve")[0].at
    assert near(events(engine, case.id, "expiry_notice")[0].at, approved_at)
    await time_skipping_env.sleep(timedelta(days=2, minutes=1))
    assert (await handle.result()).outcome == pex.EXPIRED


async def test_an_iso_notice_is_counted_back_from_the_expiry(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    policy = exception_policy(expiry_notice="P7D")
    handle, case = await start(
        time_skipping_env.client, worker.task_queue, new_exception(policy, duration_days=20)
    )
    case = await to_active(handle)
    assert case.due_at is not None
    await time_skipping_env.sleep(timedelta(days=13, hours=1))
    await eventually(lambda: "expiry_notice" in event_kinds(engine, case.id))
    assert near(events(engine, case.id, "expiry_notice")[0].at, case.due_at - timedelta(days=7))


async def test_validity_never_runs_beyond_365_days_from_approval(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    handle, case = await start(
        time_skipping_env.client,
        worker.task_queue,
        new_exception(exception_policy(), duration_days=360),
    )
    await to_active(handle)
    error = await refusal(act(handle, SAC_LEAD, "extend", days=6, reason="Longer"))
    assert error.type == "invalid"
    assert error.message.startswith("days: at most 5 more days") and "(policy 5.2)" in error.message
    case = await act(handle, SAC_LEAD, "extend", days=5, reason="To the limit")
    approved_at = events(engine, case.id, "approve")[0].at
    assert case.due_at == approved_at + timedelta(days=365)
    error = await refusal(act(handle, SAC_LEAD, "extend", days=1, reason="Beyond"))
    assert error.type == "invalid" and error.message.startswith("days: at most 0 more days")
    assert event_kinds(engine, case.id).count("extend") == 1


async def test_waiting_on_the_requester_stops_the_clock_and_lapses(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    env = time_skipping_env
    handle, case = await start(env.client, worker.task_queue, new_exception(exception_policy()))
    asked = await act(handle, OFFICER, "request_info", question="Which devices?")
    assert (asked.stage, asked.owner) == (pex.AWAITING_INFO, EMPLOYEE.email)
    await env.sleep(timedelta(days=1))
    answered = await act(handle, EMPLOYEE, "provide_info", answer="An iPhone")
    assert (answered.stage, answered.owner) == (pex.TRIAGE, None)
    assert case.due_at is not None and answered.due_at is not None
    assert answered.due_at - case.due_at >= timedelta(days=1)

    await act(handle, OFFICER, "request_info", question="Which model?")
    await env.sleep(timedelta(days=6))
    result = await handle.result()
    assert (result.status, result.outcome) == ("closed", pex.LAPSED)
    assert event_kinds(engine, case.id)[-1] == "closed"


async def test_four_eyes_the_assessor_and_the_requester_do_not_decide(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    client, queue = time_skipping_env.client, worker.task_queue
    handle, case = await start(client, queue, new_exception(exception_policy()))
    await to_decision(handle, assessor=SAC_LEAD)
    for action, fields in (("approve", {}), ("reject", {"reason": "No"})):
        error = await refusal(act(handle, SAC_LEAD, action, **fields))
        assert error.type == "forbidden" and "four eyes" in error.message
    error = await refusal(act(handle, OFFICER, "approve"))  # not a SAC lead
    assert error.type == "forbidden"
    error = await refusal(act(handle, OFFICER, "reject", reason="No"))
    assert error.type == "forbidden"
    case = await act(handle, SAC_LEAD2, "approve")
    assert case.stage == pex.ACTIVE

    # A SAC lead asking for an exception of their own does not decide it either.
    handle, _ = await start(client, queue, new_exception(exception_policy(), requester=SAC_LEAD))
    await to_decision(handle)
    error = await refusal(act(handle, SAC_LEAD, "approve"))
    assert error.type == "forbidden" and "requester" in error.message
    assert (await act(handle, SAC_LEAD2, "approve")).stage == pex.ACTIVE


@pytest.mark.parametrize(
    ("stage", "actor", "action", "fields", "outcome"),
    [
        (pex.TRIAGE, OFFICER, "reject", {"reason": "Use a DWP device"}, pex.REJECTED),
        (pex.DECISION, SAC_LEAD, "reject", {"reason": "Risk too high"}, pex.REJECTED),
        (pex.TRIAGE, EMPLOYEE, "withdraw", {}, pex.WITHDRAWN),
        (pex.AWAITING_INFO, EMPLOYEE, "withdraw", {}, pex.WITHDRAWN),
        (pex.RISK_ASSESSMENT, EMPLOYEE, "withdraw", {}, pex.WITHDRAWN),
        (pex.DECISION, EMPLOYEE, "withdraw", {}, pex.WITHDRAWN),
        (pex.ACTIVE, OFFICER, "revoke", {"reason": "Device lost"}, pex.REVOKED),
    ],
)
async def test_every_way_to_close(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    stage: str,
    actor: Actor,
    action: str,
    fields: dict[str, str],
    outcome: str,
) -> None:
    handle, case = await start(
        time_skipping_env.client, worker.task_queue, new_exception(exception_policy())
    )
    if stage == pex.AWAITING_INFO:
        await act(handle, OFFICER, "request_info", question="Why?")
    elif stage == pex.RISK_ASSESSMENT:
        await act(handle, OFFICER, "accept")
    elif stage == pex.DECISION:
        await to_decision(handle)
    elif stage == pex.ACTIVE:
        await to_active(handle)
    case = await act(handle, actor, action, **fields)
    assert (case.status, case.outcome, case.due_at) == ("closed", outcome, None)
    assert (await handle.result()).outcome == outcome
    assert row(engine, case.id).outcome == outcome
    closed = events(engine, case.id, "closed")[0]
    assert closed.data == {"outcome": outcome, **fields}


@pytest.mark.parametrize(
    ("actor", "action", "fields", "code"),
    [
        (EMPLOYEE, "accept", {}, "forbidden"),
        (OFFICER, "approve", {}, "conflict"),  # not at decision yet
        (OFFICER, "submit_assessment", {"risk_rating": "low", "assessment": "x"}, "conflict"),
        (OFFICER, "reject", {}, "invalid"),  # reason is required
        (SAC_LEAD, "extend", {"days": 5, "reason": "x"}, "conflict"),
        (EMPLOYEE, "provide_info", {"answer": "x"}, "conflict"),
        (EMPLOYEE, "reassign", {"assignee": OFFICER.email}, "forbidden"),
        (OFFICER, "fly", {}, "invalid"),
    ],
)
async def test_refused_actions_name_the_reason_and_change_nothing(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    actor: Actor,
    action: str,
    fields: dict[str, object],
    code: str,
) -> None:
    handle, _ = await start(
        time_skipping_env.client, worker.task_queue, new_exception(exception_policy())
    )
    error = await refused_changing_nothing(engine, handle, actor, action, **fields)
    assert error.type == code


async def test_invalid_assessment_and_extension_fields_are_named(
    time_skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle, _ = await start(
        time_skipping_env.client, worker.task_queue, new_exception(exception_policy())
    )
    await act(handle, OFFICER, "accept")
    error = await refusal(
        act(handle, OFFICER, "submit_assessment", risk_rating="severe", assessment="x")
    )
    assert (error.type, error.message) == (
        "invalid",
        "risk_rating: must be one of low, medium, high",
    )
    await act(handle, OFFICER2, "submit_assessment", risk_rating="low", assessment="x")
    await act(handle, SAC_LEAD, "approve")
    error = await refusal(act(handle, SAC_LEAD, "extend", days=0, reason="x"))
    assert error.type == "invalid" and error.message.startswith("days:") and "5.2" in error.message


async def test_the_decision_waits_on_the_sac_leads(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    handle, case = await start(
        time_skipping_env.client, worker.task_queue, new_exception(exception_policy())
    )
    # Assigned to an officer for triage, it still goes to the SAC leads to decide.
    await act(handle, SAC_LEAD, "reassign", assignee=OFFICER.email)
    assert (await act(handle, OFFICER, "accept")).owner == OFFICER.email
    case = await act(handle, OFFICER2, "submit_assessment", risk_rating="low", assessment="OK")
    assert (case.owner, case.assignee) == (None, OFFICER.email)

    def asked(who: str) -> bool:
        return any("decision" in s for s in sink.subjects(who))

    await eventually(lambda: asked(SAC_LEAD.email) and asked(SAC_LEAD2.email))
    assert not asked(OFFICER.email) and not asked(OFFICER2.email)
    # A lead may still hand the decision to one named lead.
    case = await act(handle, SAC_LEAD, "reassign", assignee=SAC_LEAD2.email)
    assert case.owner == SAC_LEAD2.email
    case = await act(handle, ADMIN, "comment", text="Urgent: fair on Monday")
    assert event_kinds(engine, case.id)[-1] == "comment"


async def test_an_overdue_decision_escalates_past_the_assessor(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    policy = exception_policy()
    decision = policy.stages[pex.TYPE][pex.DECISION]
    decision.sla, decision.remind, decision.escalate_every = "PT2H", "PT1H", "PT1H"
    handle, case = await start(time_skipping_env.client, worker.task_queue, new_exception(policy))
    # The SAC team's lead (the first by email) assessed it: the escalation passes over
    # them to their manager.
    await to_decision(handle, assessor=SAC_LEAD2)
    await time_skipping_env.sleep(timedelta(hours=2, minutes=5))
    await eventually(lambda: len(events(engine, case.id, "escalated")) == 1)
    reminded, escalated = (
        events(engine, case.id, "reminded")[0],
        events(engine, case.id, "escalated")[0],
    )
    assert reminded.data == {"to": "team:sac_lead"}
    assert (escalated.data["to"], escalated.data["skipped"]) == (
        "director@dwp.gov.uk",
        [SAC_LEAD2.email],
    )


# ---- the IPA on a personal device and its policy exception (5.1) ---------------------


async def test_an_ipa_on_a_personal_device_raises_an_exception_and_follows_it(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    env = time_skipping_env
    ipa_handle = await personal_ipa(env.client, worker.task_queue)
    case = await act(ipa_handle, OFFICER, "approve")
    assert case.stage == ipa.AWAITING_EXCEPTION
    pex_handle = await raised_exception(env.client, case)
    exception = await snapshot(pex_handle)

    # Linked both ways, on the record of both.
    assert case.links == [Link(exception.id, ipa.EXCEPTION)]
    assert exception.links == [Link(case.id, ipa.EXCEPTION_FOR)]
    assert row(engine, case.id).links == [{"id": exception.id, "relation": "exception"}]
    assert row(engine, exception.id).links == [{"id": case.id, "relation": "exception_for"}]
    for here, there, relation in (
        (case, exception, "exception"),
        (exception, case, "exception_for"),
    ):
        [linked] = events(engine, here.id, "linked")
        assert linked.data == {"case": there.id, "relation": relation}
    assert events(engine, case.id, "approve")[0].data["exception_case"] == exception.id

    # The exception asks for what the IPA needs, for as long as the policy allows.
    assert (exception.type, exception.requester, exception.stage) == (
        pex.TYPE,
        EMPLOYEE.email,
        pex.TRIAGE,
    )
    assert exception.details["policy_section"] == "5.1"
    assert "personal device" in exception.details["requirement"]
    assert exception.details["justification"] == case.details["justification"]
    assert exception.details["duration_days"] == 365
    assert exception.details["related_case"] == case.id

    # Its approval makes the account active; its revocation revokes the account.
    await to_active(pex_handle)

    async def ipa_stage() -> str:
        return (await snapshot(ipa_handle)).stage

    async def active() -> bool:
        return await ipa_stage() == ipa.ACTIVE

    await eventually(active)
    await act(pex_handle, OFFICER, "revoke", reason="Device no longer encrypted")
    result = await ipa_handle.result()
    assert (result.status, result.outcome) == ("closed", ipa.REVOKED)
    closed = events(engine, case.id, "closed")[0]
    assert closed.data == {
        "outcome": ipa.REVOKED,
        "reason": f"policy exception {exception.id} was revoked",
        "policy": "5.1",
    }
    changes = [e.data["stage"] for e in events(engine, case.id, "linked_case_changed")]
    assert changes[-2:] == [pex.ACTIVE, "closed"]


@pytest.mark.parametrize(
    ("actor", "action", "fields", "reason"),
    [
        (OFFICER, "reject", {"reason": "Use a DWP phone"}, "was rejected"),
        (EMPLOYEE, "withdraw", {}, "was withdrawn"),
    ],
)
async def test_an_ipa_whose_exception_closes_before_approval_is_rejected(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    actor: Actor,
    action: str,
    fields: dict[str, str],
    reason: str,
) -> None:
    env = time_skipping_env
    ipa_handle = await personal_ipa(env.client, worker.task_queue)
    case = await act(ipa_handle, OFFICER, "approve")
    pex_handle = await raised_exception(env.client, case)
    exception = await act(pex_handle, actor, action, **fields)
    result = await ipa_handle.result()
    assert (result.status, result.outcome) == ("closed", ipa.REJECTED)
    closed = events(engine, case.id, "closed")[0]
    assert closed.data["reason"] == f"policy exception {exception.id} {reason}"
    assert closed.data["policy"] == "5.1"


async def test_an_ipa_naming_an_approved_exception_goes_active_at_once(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    env = time_skipping_env
    pex_handle, exception = await start(
        env.client, worker.task_queue, new_exception(exception_policy(), duration_days=3)
    )
    await to_active(pex_handle)
    ipa_handle = await personal_ipa(env.client, worker.task_queue, exception_case=exception.id)
    case = await act(ipa_handle, OFFICER, "approve")
    assert case.stage == ipa.ACTIVE
    assert case.links == [Link(exception.id, ipa.EXCEPTION)]
    approval = events(engine, case.id, "approve")[0]
    assert (approval.data["exception_case"], approval.data["to"]) == (exception.id, ipa.ACTIVE)

    # The exception knows it is followed, and links back.
    async def linked_back() -> bool:
        return (await snapshot(pex_handle)).links == [Link(case.id, ipa.EXCEPTION_FOR)]

    await eventually(linked_back)
    # When it expires, the account goes with it.
    await env.sleep(timedelta(days=3, minutes=1))
    assert (await pex_handle.result()).outcome == pex.EXPIRED
    result = await ipa_handle.result()
    assert result.outcome == ipa.REVOKED
    assert events(engine, case.id, "closed")[0].data["reason"] == (
        f"policy exception {exception.id} expired"
    )


async def test_an_ipa_naming_an_exception_still_being_decided_waits_on_it(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    env = time_skipping_env
    pex_handle, exception = await start(
        env.client, worker.task_queue, new_exception(exception_policy())
    )
    await to_decision(pex_handle)
    ipa_handle = await personal_ipa(env.client, worker.task_queue, exception_case=exception.id)
    case = await act(ipa_handle, OFFICER, "approve")
    assert (case.stage, case.links) == (ipa.AWAITING_EXCEPTION, [Link(exception.id, "exception")])
    await act(pex_handle, SAC_LEAD, "approve")

    async def active() -> bool:
        return (await snapshot(ipa_handle)).stage == ipa.ACTIVE

    await eventually(active)


@pytest.mark.parametrize("whose", ["someone else's", "closed", "missing", "an IPA"])
async def test_an_ipa_naming_an_exception_that_cannot_cover_it_raises_its_own(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine, whose: str
) -> None:
    env, queue = time_skipping_env, worker.task_queue
    name, why = "PEX-2026-999999", "no such case"
    if whose == "someone else's":
        _, other = await start(
            env.client, queue, new_exception(exception_policy(), requester=OFFICER)
        )
        name, why = other.id, "raised by someone else"
    elif whose == "closed":
        handle, other = await start(env.client, queue, new_exception(exception_policy()))
        await act(handle, EMPLOYEE, "withdraw")
        name, why = other.id, "closed (withdrawn)"
    elif whose == "an IPA":
        _, other = await start(env.client, queue, new_case(shipped_policy()))
        name, why = other.id, "not a policy exception"
    ipa_handle = await personal_ipa(env.client, queue, exception_case=name)
    case = await act(ipa_handle, OFFICER, "approve")
    assert case.stage == ipa.AWAITING_EXCEPTION
    [link] = case.links
    assert link.relation == ipa.EXCEPTION and link.id != name
    approval = events(engine, case.id, "approve")[0]
    assert approval.data["exception_case_not_used"] == f"{name}: {why}"
    assert approval.data["exception_case"] == link.id
