"""The abuse investigation workflow on the time-skipping server, with real activities,
database and SMTP: every branch, the welfare note, escalation past the perpetrator, and
the disciplinary referral it raises and that outlives it."""

from __future__ import annotations

from datetime import timedelta
from email.message import Message
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from app.service.audit import verify
from domain.calendar import WorkingCalendar
from tests.fixtures_temporal import SmtpSink, eventually
from tests.workflows.helpers import (
    act,
    event_kinds,
    events,
    refusal,
    refused_changing_nothing,
    snapshot,
    start,
)
from tests.workflows.investigation_helpers import (
    ADMIN,
    HR,
    INVESTIGATOR,
    INVESTIGATOR2,
    PERPETRATOR,
    REPORTER,
    SHA,
    SIRT_LEAD,
    SIRT_LEAD2,
    SUMMARY,
    TARGET,
    TARGET2,
    fast_policy,
    load_people,
    new_investigation,
    policy,
)
from workflows import investigation_types as abu
from workflows.common import Actor, CaseSnapshot
from workflows.registry import SNAPSHOT_QUERY

DIRECTOR, MANAGER, CEO = "director@dwp.gov.uk", "manager@dwp.gov.uk", "ceo@dwp.gov.uk"
LEADS = [SIRT_LEAD.email, SIRT_LEAD2.email]


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


async def test_a_referred_substantiated_finding_raises_a_referral_that_outlives_it(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    client = time_skipping_env.client
    handle, case = await start(client, worker.task_queue, new_investigation(policy()))
    assert (case.stage, case.owner, case.team, case.confidential) == (
        abu.TRIAGE,
        None,
        "sirt",
        True,
    )
    assert case.parties["perpetrator"] == PERPETRATOR.email
    case = await act(handle, SIRT_LEAD, "assign", investigator=INVESTIGATOR.email)
    assert (case.stage, case.owner, case.assignee) == (
        abu.INVESTIGATION,
        INVESTIGATOR.email,
        INVESTIGATOR.email,
    )
    assert case.parties["investigator"] == INVESTIGATOR.email
    await act(handle, INVESTIGATOR, "add_evidence", description="Screenshot", sha256=SHA)
    await act(handle, INVESTIGATOR, "add_evidence", description="Thread", url="https://x.example/1")
    case = await act(
        handle,
        INVESTIGATOR,
        "conclude",
        finding=abu.SUBSTANTIATED,
        summary=SUMMARY,
        refer=True,
        criminal_consideration=True,
    )
    assert (case.stage, case.owner) == (abu.REVIEW, None)  # the SIRT queue's, for its lead
    closed = await act(handle, SIRT_LEAD2, "close")
    assert (closed.status, closed.outcome) == ("closed", abu.SUBSTANTIATED)
    (link,) = closed.links
    assert link.relation == "referral" and link.id.startswith("DIS-")
    assert (await handle.result()).outcome == abu.SUBSTANTIATED
    # The finding waited on the SIRT leads alone: only they may close or reopen it.
    told = [e for e in events(engine, case.id, "emailed") if e.data["kind"] == "action_needed"]
    assert {e.stage: e.data["to"] for e in told} == {
        abu.TRIAGE: sorted([INVESTIGATOR.email, INVESTIGATOR2.email, *LEADS]),
        abu.INVESTIGATION: [INVESTIGATOR.email],
        abu.REVIEW: sorted(LEADS),
    }
    assert len(told) == 3

    # The referral is a case of its own, open after the investigation has closed.
    referral = client.get_workflow_handle(link.id)
    assert (await referral.describe()).status == WorkflowExecutionStatus.RUNNING
    raised: CaseSnapshot = await referral.query(SNAPSHOT_QUERY, result_type=CaseSnapshot)
    assert raised.details == {
        "subject": PERPETRATOR.email,
        "breach": SUMMARY,
        "policy_sections": "4.1, 6.2",
        "source_case": case.id,
        "criminal_consideration": True,
    }
    assert (raised.type, raised.requester, raised.confidential) == (
        "disciplinary_referral",
        SIRT_LEAD2.email,
        True,
    )
    assert raised.parties["subject"] == PERPETRATOR.email
    assert [(x.id, x.relation) for x in raised.links] == [(case.id, "investigation")]
    accepted = await act(referral, HR, "accept", caseworker=HR.email)
    assert accepted.stage == "hearing"

    # Linked both ways in the audit trails.
    assert [e.data for e in events(engine, case.id, "linked")] == [
        {"case": link.id, "relation": "referral"}
    ]
    assert [e.data for e in events(engine, link.id, "linked")] == [
        {"case": case.id, "relation": "investigation"}
    ]
    assert event_kinds(engine, case.id) == [
        "opened",
        "welfare_skipped",
        "assign",
        "add_evidence",
        "add_evidence",
        "conclude",
        "close",
        "linked",
        "closed",
    ]
    assert [e.data["item"] for e in events(engine, case.id, "add_evidence")] == [1, 2]
    assert events(engine, case.id, "close")[0].data == {"referral": link.id, "to": "closed"}
    assert events(engine, case.id, "closed")[0].data == {
        "outcome": abu.SUBSTANTIATED,
        "finding": abu.SUBSTANTIATED,
        "referral": link.id,
    }
    with Session(engine) as session:
        assert verify(session, case.id).ok


@pytest.mark.parametrize(
    ("finding", "refer", "kind", "expected"),
    [
        (abu.SUBSTANTIATED, True, "employee", "referral"),
        (abu.SUBSTANTIATED, False, "employee", None),
        (abu.UNSUBSTANTIATED, True, "employee", "refused"),
        (abu.INCONCLUSIVE, True, "employee", "refused"),
        (abu.SUBSTANTIATED, True, "external", "refused"),
        (abu.SUBSTANTIATED, False, "unknown", None),
    ],
)
async def test_a_referral_is_raised_only_when_referred_substantiated_and_an_employee(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    finding: str,
    refer: bool,
    kind: str,
    expected: str | None,
) -> None:
    perpetrator: dict[str, str] = {"kind": kind, "description": "@troll on X"}
    if kind == "employee":
        perpetrator["email"] = PERPETRATOR.email
    inp = new_investigation(policy(), perpetrator=perpetrator)
    handle, _ = await start(time_skipping_env.client, worker.task_queue, inp)
    await act(handle, SIRT_LEAD, "assign", investigator=INVESTIGATOR.email)
    conclusion = {"finding": finding, "summary": SUMMARY, "refer": refer}
    if expected == "refused":
        error = await refusal(act(handle, INVESTIGATOR, "conclude", **conclusion))
        assert error.type == "invalid" and error.message.startswith("refer: only")
        assert "(policy 6.2)" in error.message
        conclusion["refer"] = False
    await act(handle, INVESTIGATOR, "conclude", **conclusion)
    closed = await act(handle, SIRT_LEAD2, "close")
    assert closed.outcome == finding
    assert [x.relation for x in closed.links] == (["referral"] if expected == "referral" else [])


async def test_no_further_action(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    handle, case = await start(
        time_skipping_env.client, worker.task_queue, new_investigation(policy())
    )
    closed = await act(handle, INVESTIGATOR2, "no_further_action", reason="Satire, not abuse")
    assert (closed.status, closed.outcome, closed.links) == ("closed", abu.NO_FURTHER_ACTION, [])
    assert (await handle.result()).outcome == abu.NO_FURTHER_ACTION
    assert event_kinds(engine, case.id)[-2:] == ["no_further_action", "closed"]


async def test_a_lead_may_reopen_the_investigation(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    handle, case = await start(
        time_skipping_env.client, worker.task_queue, new_investigation(policy())
    )
    await act(handle, SIRT_LEAD, "assign", investigator=INVESTIGATOR.email)
    await act(
        handle, INVESTIGATOR, "conclude", finding=abu.UNSUBSTANTIATED, summary="-", refer=False
    )
    reopened = await act(handle, SIRT_LEAD, "reopen", reason="Ask the second target too")
    assert (reopened.stage, reopened.owner) == (abu.INVESTIGATION, INVESTIGATOR.email)
    assert reopened.due_at is not None
    await act(handle, INVESTIGATOR, "add_evidence", description="Second target's account")
    await act(handle, INVESTIGATOR, "conclude", finding=abu.INCONCLUSIVE, summary="-", refer=False)
    closed = await act(handle, SIRT_LEAD, "close")
    assert (closed.outcome, closed.links) == (abu.INCONCLUSIVE, [])
    reopen = events(engine, case.id, "reopen")[0]
    assert reopen.data == {"reason": "Ask the second target too", "to": abu.INVESTIGATION}


async def test_extensions_move_the_due_time_at_most_twice(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    handle, case = await start(
        time_skipping_env.client, worker.task_queue, new_investigation(policy())
    )
    assigned = await act(handle, SIRT_LEAD, "assign", investigator=INVESTIGATOR.email)
    assert assigned.due_at is not None
    first = await act(handle, INVESTIGATOR, "extend", by="P5D", reason="Platform is slow")
    assert first.due_at == assigned.due_at + timedelta(days=5)
    second = await act(handle, INVESTIGATOR, "extend", by="10wd", reason="Witness on leave")
    assert second.due_at == WorkingCalendar().add(first.due_at, "10wd")
    error = await refusal(act(handle, INVESTIGATOR, "extend", by="P1D", reason="One more"))
    assert (error.type, error.message) == (
        "conflict",
        "extend: at most 2 extensions per investigation",
    )
    recorded = [e.data for e in events(engine, case.id, "extend")]
    assert [(d["extension"], d["by"]) for d in recorded] == [(1, "P5D"), (2, "10wd")]
    assert recorded[1]["due_at_before"] == first.due_at.isoformat()
    assert recorded[1]["due_at"] == second.due_at.isoformat()


async def test_an_extension_moves_the_reminder_with_the_due_time(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    env = time_skipping_env
    handle, case = await start(env.client, worker.task_queue, new_investigation(fast_policy()))
    await act(handle, SIRT_LEAD, "assign", investigator=INVESTIGATOR.email)  # remind 5D, due 10D
    await act(handle, INVESTIGATOR, "extend", by="P10D", reason="Awaiting the platform")
    await env.sleep(timedelta(days=6))
    await act(handle, INVESTIGATOR, "comment", text="Still waiting")  # after any reminder due
    assert "reminded" not in event_kinds(engine, case.id)
    await env.sleep(timedelta(days=10))
    await eventually(lambda: event_kinds(engine, case.id).count("reminded") == 1)
    assert "escalated" not in event_kinds(engine, case.id)


async def test_targets_managers_hear_a_colleague_may_need_support_and_nothing_more(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    _, case = await start(time_skipping_env.client, worker.task_queue, new_investigation(policy()))
    # Tara reports to the perpetrator: her note goes one step further up, and says so.
    (skip,) = events(engine, case.id, "welfare_skipped")
    assert skip.data == {
        "target": TARGET.email,
        "skipped": [PERPETRATOR.email],
        "to": DIRECTOR,
        "reason": "a party to the case",
    }
    await eventually(lambda: len(sink.to(DIRECTOR)) == 1 and len(sink.to(MANAGER)) == 1)
    for manager, colleague, name in ((DIRECTOR, TARGET, "Director"), (MANAGER, TARGET2, "Line")):
        (mail,) = sink.to(manager)
        assert mail["Subject"] == "A colleague may need your support"
        assert mail["X-Casework-Case"] is None and case.id not in str(mail["Message-ID"])
        text = text_of(mail)
        assert f"Dear {name}" in text and f"{colleague.email}, who reports to you" in text
        for leak in (case.id, "ABU", "/cases/", "cyberbullying", "Abusive", PERPETRATOR.email):
            assert leak not in mail.as_string()
    # The SIRT queue is told of the new case; the perpetrator hears nothing at all.
    await eventually(lambda: len(sink.to(SIRT_LEAD.email)) == 1)
    assert sink.subjects(SIRT_LEAD.email) == [f"Case {case.id} needs attention"]
    assert sink.to(PERPETRATOR.email) == []

    def welfare() -> list[str]:
        told = events(engine, case.id, "emailed")
        return sorted(e.data["to"][0] for e in told if e.data["kind"] == "welfare")

    await eventually(lambda: welfare() == [DIRECTOR, MANAGER])


async def test_a_target_with_no_manager_is_recorded_as_not_told(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    inp = new_investigation(policy(), targets=["ceo@dwp.gov.uk"])
    _, case = await start(time_skipping_env.client, worker.task_queue, inp)
    (unsent,) = events(engine, case.id, "welfare_unsent")
    assert unsent.data == {"target": CEO, "reason": "no manager"}


async def test_escalation_passes_over_the_perpetrator_every_time(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    env = time_skipping_env
    handle, case = await start(env.client, worker.task_queue, new_investigation(fast_policy()))
    await act(handle, SIRT_LEAD, "assign", investigator=INVESTIGATOR.email)  # reports to perp
    await env.sleep(timedelta(days=13))
    await eventually(lambda: "escalation_chain_ended" in event_kinds(engine, case.id))
    escalated = [e.data for e in events(engine, case.id, "escalated")]
    assert [(d["to"], d["level"], d["skipped"]) for d in escalated] == [
        (DIRECTOR, 1, [PERPETRATOR.email]),
        (CEO, 2, [PERPETRATOR.email]),
    ]
    assert event_kinds(engine, case.id).count("reminded") == 1
    await eventually(lambda: len(sink.to(CEO)) == 1)
    assert sink.to(PERPETRATOR.email) == []


async def test_a_perpetrator_in_sirt_is_not_told_through_its_queue(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    smtp_sink: tuple[SmtpSink, int],
) -> None:
    sink, _ = smtp_sink
    perpetrator = {"kind": "employee", "email": INVESTIGATOR2.email}
    inp = new_investigation(policy(), perpetrator=perpetrator)
    handle, case = await start(time_skipping_env.client, worker.task_queue, inp)

    def queue_told() -> list[dict[str, Any]]:
        told = events(engine, case.id, "emailed")
        return [e.data for e in told if e.data["kind"] == "action_needed"]

    await eventually(lambda: len(queue_told()) == 1)
    (queue,) = queue_told()
    assert INVESTIGATOR.email in queue["to"] and INVESTIGATOR2.email not in queue["to"]
    assert sink.to(INVESTIGATOR2.email) == []
    error = await refusal(act(handle, SIRT_LEAD, "assign", investigator=INVESTIGATOR2.email))
    assert (error.type, error.message) == (
        "invalid",
        f"investigator: {INVESTIGATOR2.email} is the perpetrator of {handle.id}, a party to it",
    )


@pytest.mark.parametrize(
    ("stage", "actor", "action", "fields", "code"),
    [
        (abu.TRIAGE, REPORTER, "assign", {"investigator": INVESTIGATOR.email}, "forbidden"),
        (abu.TRIAGE, PERPETRATOR, "comment", {"text": "It wasn't me"}, "forbidden"),
        (abu.TRIAGE, SIRT_LEAD, "assign", {"investigator": TARGET.email}, "invalid"),
        (abu.TRIAGE, SIRT_LEAD, "assign", {}, "invalid"),
        (abu.TRIAGE, INVESTIGATOR, "conclude", {}, "conflict"),
        (abu.INVESTIGATION, SIRT_LEAD, "add_evidence", {"description": "x"}, "forbidden"),
        (
            abu.INVESTIGATION,
            INVESTIGATOR,
            "add_evidence",
            {"description": "x", "sha256": "ab"},
            "invalid",
        ),
        (abu.INVESTIGATION, INVESTIGATOR, "extend", {"by": "soon", "reason": "x"}, "invalid"),
        (abu.INVESTIGATION, INVESTIGATOR, "conclude", {"finding": "guilty"}, "invalid"),
        (abu.INVESTIGATION, SIRT_LEAD, "close", {}, "conflict"),
        (abu.INVESTIGATION, SIRT_LEAD, "reassign", {"assignee": PERPETRATOR.email}, "invalid"),
        (abu.REVIEW, INVESTIGATOR, "close", {}, "forbidden"),
        (abu.REVIEW, ADMIN, "reopen", {"reason": "x"}, "forbidden"),
    ],
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
    handle, _ = await start(
        time_skipping_env.client, worker.task_queue, new_investigation(policy())
    )
    if stage != abu.TRIAGE:
        await act(handle, SIRT_LEAD, "assign", investigator=INVESTIGATOR.email)
    if stage == abu.REVIEW:
        await act(
            handle, INVESTIGATOR, "conclude", finding=abu.INCONCLUSIVE, summary="-", refer=False
        )
    error = await refused_changing_nothing(engine, handle, actor, action, **fields)
    assert (error.type, (await snapshot(handle)).stage) == (code, stage)


async def test_reassigning_hands_the_investigation_on_but_not_the_four_eyes(
    time_skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle, _ = await start(
        time_skipping_env.client, worker.task_queue, new_investigation(policy())
    )
    triage = await act(handle, SIRT_LEAD, "reassign", assignee=INVESTIGATOR.email)
    assert (triage.stage, triage.owner) == (abu.TRIAGE, INVESTIGATOR.email)
    assert "investigator" not in triage.parties  # triage changes hands, nobody investigates yet
    await act(handle, INVESTIGATOR, "assign", investigator=SIRT_LEAD2.email)
    # A lead investigates and concludes; the case is then handed to someone else.
    await act(handle, SIRT_LEAD2, "conclude", finding=abu.UNSUBSTANTIATED, summary="-", refer=False)
    review = await act(handle, ADMIN, "reassign", assignee=INVESTIGATOR2.email)
    assert (review.owner, review.parties["investigator"]) == (None, INVESTIGATOR2.email)
    error = await refusal(act(handle, SIRT_LEAD2, "close"))
    assert error.type == "forbidden" and "concluded_by" in error.message
    reopened = await act(handle, SIRT_LEAD, "reopen", reason="Fresh eyes")
    assert reopened.owner == INVESTIGATOR2.email
    moved = await act(handle, SIRT_LEAD, "reassign", assignee=INVESTIGATOR.email)
    assert (moved.owner, moved.assignee) == (INVESTIGATOR.email, INVESTIGATOR.email)
    error = await refusal(act(handle, INVESTIGATOR2, "add_evidence", description="late"))
    assert error.type == "forbidden"
    await act(handle, INVESTIGATOR, "add_evidence", description="Fresh evidence")


async def test_a_perpetrator_who_leads_sirt_may_not_close_the_review_of_their_own_case(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    perpetrator = {"kind": "employee", "email": SIRT_LEAD2.email}
    inp = new_investigation(policy(), perpetrator=perpetrator)
    handle, case = await start(time_skipping_env.client, worker.task_queue, inp)
    error = await refusal(act(handle, SIRT_LEAD2, "assign", investigator=INVESTIGATOR.email))
    assert error.type == "forbidden" and "conflict of interest" in error.message
    await act(handle, SIRT_LEAD, "assign", investigator=INVESTIGATOR.email)
    await act(handle, INVESTIGATOR, "conclude", finding=abu.SUBSTANTIATED, summary="-", refer=False)
    for action, fields in (("close", {}), ("reopen", {"reason": "x"}), ("comment", {"text": "x"})):
        error = await refused_changing_nothing(engine, handle, SIRT_LEAD2, action, **fields)
        assert (error.type, error.message) == (
            "forbidden",
            f"actor: {SIRT_LEAD2.email} is the perpetrator of {case.id}, a party to it, and "
            f"may not {action} it (conflict of interest)",
        )
    closed = await act(handle, SIRT_LEAD, "close")
    assert closed.outcome == abu.SUBSTANTIATED


async def test_a_perpetrator_found_during_the_investigation_is_conflicted_from_then_on(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    unknown = {"kind": "unknown", "description": "An anonymous account"}
    inp = new_investigation(policy(), perpetrator=unknown)
    handle, case = await start(time_skipping_env.client, worker.task_queue, inp)
    assert "perpetrator" not in case.parties
    await act(handle, SIRT_LEAD, "assign", investigator=INVESTIGATOR.email)
    # Validated as at intake: an employee is named by email; nobody names themselves.
    error = await refusal(act(handle, INVESTIGATOR, "identify_perpetrator", kind="employee"))
    assert (error.type, error.message) == (
        "invalid",
        "email: required when the perpetrator is an employee (policy 6.2)",
    )
    error = await refusal(act(handle, INVESTIGATOR, "identify_perpetrator", kind="hacker"))
    assert error.type == "invalid" and error.message.startswith("kind: must be one of")
    error = await refusal(
        act(handle, INVESTIGATOR, "identify_perpetrator", kind="employee", email=INVESTIGATOR.email)
    )
    assert error.type == "invalid" and error.message.startswith("email: the investigator")
    error = await refusal(
        act(handle, SIRT_LEAD, "identify_perpetrator", kind="employee", email=SIRT_LEAD2.email)
    )
    assert error.type == "forbidden"  # the investigator's finding to make

    found = await act(
        handle,
        INVESTIGATOR,
        "identify_perpetrator",
        kind="employee",
        email=SIRT_LEAD2.email.upper(),
        description="Runs the anonymous account",
    )
    assert found.details["perpetrator"] == {
        "kind": "employee",
        "email": SIRT_LEAD2.email,
        "description": "Runs the anonymous account",
    }
    assert found.parties["perpetrator"] == SIRT_LEAD2.email
    (named,) = events(engine, case.id, "identify_perpetrator")
    assert (named.actor, named.data["previous"], named.data["email"]) == (
        INVESTIGATOR.email,
        unknown,
        SIRT_LEAD2.email,
    )
    # A SIRT lead until now, a party from now on: neither closes nor reassigns it.
    error = await refusal(act(handle, SIRT_LEAD2, "reassign", assignee=INVESTIGATOR2.email))
    assert error.type == "forbidden" and "conflict of interest" in error.message
    error = await refusal(act(handle, SIRT_LEAD, "reassign", assignee=SIRT_LEAD2.email))
    assert error.type == "invalid"  # a party to the abuse may not investigate it
    await act(handle, INVESTIGATOR, "conclude", finding=abu.SUBSTANTIATED, summary="-", refer=True)
    error = await refusal(act(handle, SIRT_LEAD2, "close"))
    assert error.type == "forbidden" and "is the perpetrator" in error.message
    closed = await act(handle, SIRT_LEAD, "close")
    (link,) = closed.links
    referral: CaseSnapshot = await time_skipping_env.client.get_workflow_handle(link.id).query(
        SNAPSHOT_QUERY, result_type=CaseSnapshot
    )
    assert referral.details["subject"] == SIRT_LEAD2.email


async def test_the_referral_raised_mails_hr_but_not_the_lead_who_may_not_see_it(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    client = time_skipping_env.client
    handle, _ = await start(client, worker.task_queue, new_investigation(policy()))
    await act(handle, SIRT_LEAD, "assign", investigator=INVESTIGATOR.email)
    await act(handle, INVESTIGATOR, "conclude", finding=abu.SUBSTANTIATED, summary="-", refer=True)
    (link,) = (await act(handle, SIRT_LEAD2, "close")).links

    def hr_told() -> bool:
        return any(e.data["kind"] == "action_needed" for e in events(engine, link.id, "emailed"))

    await eventually(hr_told)
    # The opening's mails are all under way once HR's is sent: the requester's (the SIRT
    # lead's, who would find the link answers 404) is not among them.
    mailed = [e.data["to"] for e in events(engine, link.id, "emailed")]
    assert mailed == [sorted([HR.email, "hrlead@dwp.gov.uk"])]
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        async for e in client.get_workflow_handle(link.id).fetch_history_events()
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled.count("send_mail") == 1
