"""Two worker processes on one task queue while IPA requests live their whole life; one
of them is killed with SIGKILL at random moments, again and again, and restarted.

Every case must complete, every transition be in the audit trail once, every email
arrive once: a killed worker's workflow tasks and activities are retried elsewhere.
"""

from __future__ import annotations

import asyncio
import time

from chaos.count import tally
from chaos.forms import Form
from chaos.lifecycle import LIFECYCLE_EVENTS, Driver, wait_completed
from chaos.report import Report
from chaos.rig import gather_limited, stack

NAME = "worker-kills"


async def run(form: Form, report: Report) -> None:
    cases = form.pick(short=30, long=200)
    people = form.pick(short=8, long=20)
    rng = form.rng(NAME)
    async with stack(NAME, workers=2) as s:
        driver = Driver(s)
        victim = s.workers[0]
        done = asyncio.Event()
        downtime = 0.0

        async def killer() -> None:
            nonlocal downtime
            while not done.is_set():
                # Killed while it works: once it polls again, at a random moment after.
                await victim.wait_ready()
                await asyncio.sleep(rng.uniform(0.5, 4.0))
                if done.is_set():
                    return
                victim.kill()
                pause = rng.uniform(0.2, 3.0)
                downtime += pause
                await asyncio.sleep(pause)
                victim.start()

        began = time.monotonic()
        killing = asyncio.create_task(killer())
        try:
            case_ids = await gather_limited(people, [driver.lifecycle(n) for n in range(cases)])
        finally:
            done.set()
            await killing
        if not victim.running:
            victim.start()
        crashed = [w.name for w in s.workers if w is not victim and not w.running]
        unfinished = await wait_completed(s, case_ids, timeout=300)
        report.injected += [
            f"SIGKILL of {victim.name} (process group) {victim.kills} times, each 0.5-4 s after it"
            f" was polling again"
            f" (seed {form.seed}), restarted after 0.2-3 s each ({downtime:.0f} s down in all)",
            f"{cases} IPA lifecycles ({len(LIFECYCLE_EVENTS) - 2} actions each, one a"
            f" continue-as-new), {people} people at once, 2 workers, SQLite records;"
            f" {driver.actions} actions in {time.monotonic() - began:.0f} s,"
            f" {driver.retries} service calls retried",
        ]
        if crashed:
            report.injected.append(f"{', '.join(crashed)} exited by itself (see its log)")
        if unfinished:
            report.injected.append(f"{len(unfinished)} workflows not completed after 300 s")
        report.tally = await tally(s, case_ids, LIFECYCLE_EVENTS, must_complete=True)
