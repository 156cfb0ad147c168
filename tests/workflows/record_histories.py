"""Record workflow histories of real runs into tests/histories/, for the replay test.

    .venv/bin/python -m tests.workflows.record_histories

Run it when a new case type or a new path through a workflow lands, and commit
the files: they are the running cases a later change must not break.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from aiosmtpd.controller import Controller
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from app.platform.db import make_engine, migrate
from tests.fixtures_temporal import SmtpSink, eventually, free_port, make_settings, server_binary
from tests.workflows import exception_helpers as pexh
from tests.workflows import investigation_helpers as abu
from tests.workflows.ipa_helpers import (
    EMPLOYEE,
    MANAGER,
    OFFICER,
    SAC_LEAD,
    act,
    fast_policy,
    load_people,
    new_case,
    shipped_policy,
    start,
)
from tests.workflows.referral_helpers import (
    CASEWORKER,
    CASEWORKER2,
    HR,
    HR_LEAD,
    SUBJECT,
    new_referral,
)
from tests.workflows.referral_helpers import fast_policy as referral_fast_policy
from tests.workflows.referral_helpers import load_people as load_referral_people
from tests.workflows.referral_helpers import policy as referral_policy
from tests.workflows.referral_helpers import start as start_referral
from worker import build_worker
from workflows.common import PolicyChange, PolicyChangeResult
from workflows.registry import POLICY_UPDATE
from workflows.retention import RETENTION_WORKFLOW, RetentionRun

HISTORIES = Path(__file__).resolve().parents[1] / "histories"

Scenario = Callable[[WorkflowEnvironment, str], Awaitable[list[WorkflowHandle]]]  # type: ignore[type-arg]


async def ipa_full_life(env: WorkflowEnvironment, queue: str) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    handle, case = await start(env.client, queue, new_case(shipped_policy()))
    await act(handle, EMPLOYEE, "comment", text="Thanks")
    await act(handle, MANAGER, "endorse")
    await act(handle, SAC_LEAD, "reassign", assignee=OFFICER.email)
    await act(handle, OFFICER, "request_info", question="Which audience?")
    await env.sleep(timedelta(days=1))
    await act(handle, EMPLOYEE, "provide_info", answer="Job seekers")
    await act(handle, OFFICER, "approve")
    await env.sleep(timedelta(days=380))
    await act(handle, EMPLOYEE, "attest")
    await asyncio.sleep(1)
    await act(handle, EMPLOYEE, "retire")
    await handle.result()
    first = env.client.get_workflow_handle(case.id, run_id=handle.first_execution_run_id)
    return [first, env.client.get_workflow_handle(case.id)]


async def ipa_escalated_then_declined(env: WorkflowEnvironment, queue: str) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    handle, _ = await start(env.client, queue, new_case(fast_policy()))
    await env.sleep(timedelta(hours=4))
    await act(handle, MANAGER, "decline", reason="Not a business need")
    await handle.result()
    return [handle]


async def ipa_lapsed(env: WorkflowEnvironment, queue: str) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    handle, _ = await start(env.client, queue, new_case(fast_policy()))
    await act(handle, MANAGER, "endorse")
    await act(handle, OFFICER, "request_info", question="Which platform exactly?")
    await env.sleep(timedelta(days=6))
    await handle.result()
    return [handle]


async def referral_appeal_upheld(env: WorkflowEnvironment, queue: str) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    handle, case = await start_referral(env.client, queue, new_referral(referral_policy()))
    await act(handle, HR, "comment", text="Referred by SIRT")
    await act(handle, HR, "accept", caseworker=CASEWORKER.email)
    day = case.opened_at.date() + timedelta(days=10)
    await act(handle, CASEWORKER, "schedule_hearing", on=day.isoformat())
    await act(handle, CASEWORKER, "schedule_hearing", on=(day + timedelta(days=3)).isoformat())
    await act(handle, HR_LEAD, "reassign", assignee=CASEWORKER2.email)
    await act(handle, CASEWORKER2, "record_outcome", outcome="dismissal", reason="Proven")
    await act(handle, SUBJECT, "appeal", grounds="Too harsh")
    await act(handle, HR_LEAD, "decide_appeal", upheld=True, reason="Procedure not followed")
    await handle.result()
    return [handle]


async def referral_late_hearing_then_window_ended(
    env: WorkflowEnvironment, queue: str
) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    handle, case = await start_referral(env.client, queue, new_referral(referral_fast_policy()))
    await act(handle, HR, "accept", caseworker=CASEWORKER.email)
    day = case.opened_at.date() + timedelta(days=1)
    await act(handle, CASEWORKER, "schedule_hearing", on=day.isoformat())
    await env.sleep(timedelta(days=5))  # escalated past the subject, to the director and CEO
    await act(handle, CASEWORKER, "record_outcome", outcome="final_written_warning", reason="x")
    await env.sleep(timedelta(days=6))
    await handle.result()
    return [handle]


async def referral_no_case_to_answer(env: WorkflowEnvironment, queue: str) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    handle, _ = await start_referral(env.client, queue, new_referral(referral_policy()))
    await act(handle, HR_LEAD, "no_case_to_answer", reason="Not the subject's account")
    await handle.result()
    return [handle]


async def investigation_referred(env: WorkflowEnvironment, queue: str) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    handle, _ = await abu.start(env.client, queue, abu.new_investigation(abu.policy()))
    await act(handle, abu.SIRT_LEAD, "assign", investigator=abu.INVESTIGATOR.email)
    await act(handle, abu.INVESTIGATOR, "add_evidence", description="Screenshot", sha256=abu.SHA)
    await act(handle, abu.INVESTIGATOR, "extend", by="10wd", reason="The platform is slow")
    await act(
        handle,
        abu.INVESTIGATOR,
        "conclude",
        finding="substantiated",
        summary=abu.SUMMARY,
        refer=True,
        criminal_consideration=True,
    )
    closed = await act(handle, abu.SIRT_LEAD2, "close")
    await handle.result()
    # The referral it raised, a child that outlives it.
    referral = env.client.get_workflow_handle(closed.links[0].id)
    await act(referral, HR_LEAD, "no_case_to_answer", reason="Handled informally")
    await referral.result()
    return [handle, referral]


async def investigation_escalated_then_reopened(
    env: WorkflowEnvironment, queue: str
) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    handle, _ = await abu.start(env.client, queue, abu.new_investigation(abu.fast_policy()))
    await env.sleep(timedelta(hours=4, minutes=30))  # triage escalated from the SIRT lead up
    await abu.escalated(handle, 3)
    await act(handle, abu.SIRT_LEAD, "assign", investigator=abu.INVESTIGATOR.email)
    await act(handle, abu.INVESTIGATOR, "extend", by="P2D", reason="A witness is away")
    await env.sleep(timedelta(days=14, hours=12))  # escalated past the perpetrator
    await abu.escalated(handle, 2)
    await act(
        handle, abu.INVESTIGATOR, "conclude", finding="inconclusive", summary="-", refer=False
    )
    await act(handle, abu.SIRT_LEAD, "reopen", reason="Ask the platform")
    await act(handle, abu.SIRT_LEAD, "reassign", assignee=abu.INVESTIGATOR2.email)
    await act(
        handle, abu.INVESTIGATOR2, "conclude", finding="unsubstantiated", summary="-", refer=False
    )
    await act(handle, abu.SIRT_LEAD, "close")
    await handle.result()
    return [handle]


async def investigation_no_further_action(
    env: WorkflowEnvironment, queue: str
) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    inp = abu.new_investigation(abu.policy(), targets=["ceo@dwp.gov.uk"])  # no one to tell
    handle, _ = await abu.start(env.client, queue, inp)
    await act(handle, abu.SIRT_LEAD, "comment", text="Looking into it")
    await act(handle, abu.SIRT_LEAD, "no_further_action", reason="Satire, not abuse")
    await handle.result()
    return [handle]


async def exception_full_life(env: WorkflowEnvironment, queue: str) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    handle, _ = await pexh.start(env.client, queue, pexh.new_exception(pexh.exception_policy()))
    await act(handle, EMPLOYEE, "comment", text="Needed for the job fairs")
    await act(handle, OFFICER, "request_info", question="Which phone?")
    await env.sleep(timedelta(days=1))
    await act(handle, EMPLOYEE, "provide_info", answer="A personal iPhone")
    await pexh.to_decision(handle)
    await act(handle, SAC_LEAD, "approve")
    await act(handle, SAC_LEAD, "extend", days=10, reason="The fair season runs on")
    await env.sleep(timedelta(days=41))  # the notice 10 working days before, then expiry
    await handle.result()
    return [handle]


async def exception_for_ipa_approved_then_revoked(
    env: WorkflowEnvironment, queue: str
) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    ipa_handle = await pexh.personal_ipa(env.client, queue)
    exception = await pexh.raised_exception(env.client, await act(ipa_handle, OFFICER, "approve"))
    await pexh.to_active(exception)

    async def ipa_active() -> bool:
        return (await pexh.snapshot(ipa_handle)).stage == "active"

    await eventually(ipa_active)
    await act(exception, OFFICER, "revoke", reason="The phone is no longer encrypted")
    await ipa_handle.result()
    await exception.result()
    return [ipa_handle, exception]


async def exception_for_ipa_rejected_at_decision(
    env: WorkflowEnvironment, queue: str
) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    ipa_handle = await pexh.personal_ipa(env.client, queue)
    exception = await pexh.raised_exception(env.client, await act(ipa_handle, OFFICER, "approve"))
    await pexh.to_decision(exception)
    await act(exception, SAC_LEAD, "reject", reason="Use a DWP phone")
    await ipa_handle.result()
    await exception.result()
    return [ipa_handle, exception]


async def ipa_naming_an_approved_exception(
    env: WorkflowEnvironment, queue: str
) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    inp = pexh.new_exception(pexh.exception_policy(), duration_days=3)
    exception, case = await pexh.start(env.client, queue, inp)
    await pexh.to_active(exception)
    ipa_handle = await pexh.personal_ipa(env.client, queue, exception_case=case.id)
    await act(ipa_handle, OFFICER, "approve")
    await env.sleep(timedelta(days=3, minutes=1))
    await exception.result()
    await ipa_handle.result()
    return [ipa_handle, exception]


async def ipa_policy_changed(env: WorkflowEnvironment, queue: str) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    """A shortened SLA reaches an open case: re-planned, overdue, escalated, withdrawn."""
    handle, _ = await start(env.client, queue, new_case(fast_policy(sla="P10D", remind="P5D")))
    await env.sleep(timedelta(hours=2))
    strict = dataclasses.replace(fast_policy(sla="PT1H", remind="PT30M"), version="strict")
    await handle.execute_update(
        POLICY_UPDATE, PolicyChange(strict.for_case("ipa_approval")), result_type=PolicyChangeResult
    )
    await env.sleep(timedelta(hours=1, minutes=1))
    await act(handle, EMPLOYEE, "withdraw")
    await handle.result()
    return [handle]


async def retention_run(env: WorkflowEnvironment, queue: str) -> list[WorkflowHandle]:  # type: ignore[type-arg]
    handle = await env.client.start_workflow(
        RETENTION_WORKFLOW, RetentionRun(), id=f"retention-{uuid.uuid4().hex[:8]}", task_queue=queue
    )
    await handle.result()
    return [handle]


SCENARIOS: dict[str, Scenario] = {
    "ipa_full_life": ipa_full_life,
    "ipa_escalated_then_declined": ipa_escalated_then_declined,
    "ipa_lapsed": ipa_lapsed,
    "referral_appeal_upheld": referral_appeal_upheld,
    "referral_late_hearing_then_window_ended": referral_late_hearing_then_window_ended,
    "referral_no_case_to_answer": referral_no_case_to_answer,
    "investigation_referred": investigation_referred,
    "investigation_escalated_then_reopened": investigation_escalated_then_reopened,
    "investigation_no_further_action": investigation_no_further_action,
    "exception_full_life": exception_full_life,
    "exception_for_ipa_approved_then_revoked": exception_for_ipa_approved_then_revoked,
    "exception_for_ipa_rejected_at_decision": exception_for_ipa_rejected_at_decision,
    "ipa_naming_an_approved_exception": ipa_naming_an_approved_exception,
    "ipa_policy_changed": ipa_policy_changed,
    "retention_run": retention_run,
}
# Last: once a child case ends after the case that raised it (a referral outliving its
# investigation), the time-skipping server holds time still for every scenario after it.
SCENARIOS["investigation_referred"] = SCENARIOS.pop("investigation_referred")


async def record_all(out: Path = HISTORIES, only: list[str] | None = None) -> list[Path]:
    """Record every scenario, or those named in `only` (leaving the other files as they are)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/casework.db"
        migrate(url)
        engine = make_engine(url)
        load_people(engine)
        load_referral_people(engine)
        abu.load_people(engine)
        port = free_port()
        smtp = Controller(SmtpSink(), hostname="127.0.0.1", port=port)
        smtp.start()
        settings = make_settings(Path(tmp), url, port)
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=server_binary("temporal-test-server")
        )
        try:
            for name, scenario in SCENARIOS.items():
                if only and name not in only:
                    continue
                queue = f"record-{uuid.uuid4().hex[:8]}"
                async with build_worker(
                    env.client, settings=settings, engine=engine, task_queue=queue
                ):
                    handles = await scenario(env, queue)
                for n, handle in enumerate(handles):
                    history = await handle.fetch_history()
                    path = out / f"{name}.{n}.json"
                    path.write_text(history.to_json())
                    written.append(path)
        finally:
            await env.shutdown()
            smtp.stop()
            engine.dispose()
    return written


if __name__ == "__main__":
    # Scenario names as arguments record only those: the other saved histories stay.
    for path in asyncio.run(record_all(only=sys.argv[1:] or None)):
        print(path)
