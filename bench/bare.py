"""The bare engine: a workflow doing a case's Temporal work with no work of its own.

It takes the same updates as a Casework case and runs the same activities and
local activities in the same order, but each activity is a no-op: no database,
no mail, no templates. What Casework costs beyond this is the price of the
product; `bench.ipa_throughput` prints both. Imports only temporalio and the
standard library, so it cannot pick up any of the product by accident.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow

OPENED = "opened"
ACT = "act"
ACTIVITY_TIMEOUT = timedelta(seconds=30)
# A Casework case waits on its stage's clock (a timer) between actions; so does this.
IDLE = timedelta(days=365)


@dataclass
class Step:
    """What one Casework step (open, or an action) asks of Temporal.

    `local` local activities, then `awaited` activities, before the update
    returns; then each chain in `background` runs concurrently, its activities
    one after another (Casework's mail: `team_members`, then `send_mail`).
    With `timer`, the wait for the next step has a timeout (Casework: the
    stage's service-level clock), so a timer is started and then cancelled.
    """

    local: int = 0
    awaited: int = 0
    background: list[int] = field(default_factory=list)
    timer: bool = True

    def activities(self) -> int:
        return self.awaited + sum(self.background)


@dataclass
class Plan:
    """Step 0 runs when the workflow starts; the `act` update runs each later one."""

    steps: list[Step]


class BareActivities:
    """No-op activities; a name each, so a history reads like Casework's.

    `on_done`, if given, is called as each one finishes (a bench counting them from
    another process)."""

    def __init__(self, on_done: Callable[[], None] | None = None) -> None:
        self._on_done = on_done

    @activity.defn(name="bare_local")
    async def local(self, n: int) -> int:
        if self._on_done:
            self._on_done()
        return n

    @activity.defn(name="bare_activity")
    async def activity(self, n: int) -> int:
        if self._on_done:
            self._on_done()
        return n


@workflow.defn(name="BareCase")
class BareCase:
    @workflow.init
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.done = 0  # steps finished
        self.background: list[asyncio.Task[None]] = []

    @workflow.run
    async def run(self, plan: Plan) -> int:
        await self._step(plan.steps[0])
        while True:
            timeout = IDLE if plan.steps[self.done - 1].timer else None
            try:
                await workflow.wait_condition(self._moved_on(), timeout=timeout)
            except TimeoutError:
                break
        await workflow.wait_condition(workflow.all_handlers_finished)
        await asyncio.gather(*self.background)
        return self.done

    @workflow.update(name=OPENED)
    async def opened(self) -> int:
        await workflow.wait_condition(lambda: self.done > 0)
        return self.done

    @workflow.update(name=ACT)
    async def act(self) -> int:
        await self._step(self.plan.steps[self.done])
        return self.done

    @act.validator
    def validate_act(self) -> None:
        if not 0 < self.done < len(self.plan.steps):
            raise ValueError("not open, or no step left")

    def _moved_on(self) -> Callable[[], bool]:
        """True once another step is done (Casework: once the stage moves)."""
        token = self.done
        return lambda: self.done != token

    async def _step(self, step: Step) -> None:
        for n in range(step.local):
            await workflow.execute_local_activity(
                "bare_local", n, result_type=int, start_to_close_timeout=ACTIVITY_TIMEOUT
            )
        for n in range(step.awaited):
            await workflow.execute_activity(
                "bare_activity", n, result_type=int, start_to_close_timeout=ACTIVITY_TIMEOUT
            )
        self.done += 1
        for length in step.background:
            self.background.append(asyncio.create_task(self._chain(length)))

    async def _chain(self, length: int) -> None:
        for n in range(length):
            await workflow.execute_activity(
                "bare_activity", n, result_type=int, start_to_close_timeout=ACTIVITY_TIMEOUT
            )


async def serve(address: str, task_queue: str, namespace: str = "default") -> None:
    """A bare worker until SIGTERM or Ctrl-C: the bare side of a bench that runs each
    side's worker in a process of its own (bench.latency). Writes a line to stdout as
    each activity finishes, so that bench knows when a case's background work is done."""
    import signal
    import sys

    from temporalio.client import Client
    from temporalio.worker import Worker

    def done() -> None:
        sys.stdout.write("a\n")
        sys.stdout.flush()

    client = await Client.connect(address, namespace=namespace)
    noop = BareActivities(done)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(
        client, task_queue=task_queue, workflows=[BareCase], activities=[noop.local, noop.activity]
    ):
        await stop.wait()


if __name__ == "__main__":
    import sys

    asyncio.run(serve(sys.argv[1], sys.argv[2]))
