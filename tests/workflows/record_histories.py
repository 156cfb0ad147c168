"""Record workflow histories of real runs into tests/histories/, for the replay test.

    .venv/bin/python -m tests.workflows.record_histories

Run it when a new case type or a new path through a workflow lands, and commit
the files: they are the running cases a later change must not break.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from aiosmtpd.controller import Controller
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from app.db import make_engine, migrate
from tests.fixtures_temporal import SmtpSink, free_port, make_settings, server_binary
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
from worker import build_worker

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


SCENARIOS: dict[str, Scenario] = {
    "ipa_full_life": ipa_full_life,
    "ipa_escalated_then_declined": ipa_escalated_then_declined,
    "ipa_lapsed": ipa_lapsed,
}


async def record_all(out: Path = HISTORIES) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/casework.db"
        migrate(url)
        engine = make_engine(url)
        load_people(engine)
        port = free_port()
        smtp = Controller(SmtpSink(), hostname="127.0.0.1", port=port)
        smtp.start()
        settings = make_settings(Path(tmp), url, port)
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=server_binary("temporal-test-server")
        )
        try:
            for name, scenario in SCENARIOS.items():
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
    for path in asyncio.run(record_all()):
        print(path)
