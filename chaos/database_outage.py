"""The records database out of reach while IPA requests live their whole life.

PostgreSQL: the workers reach the machine's server through a proxy of this run's
own, which is cut (listener closed, every connection reset) and restored, so the
shared server other people use is never stopped. The service layer keeps its own
direct connection: the fault is the workers'. SQLite: another connection holds
`BEGIN EXCLUSIVE` on the file, so every writer waits, times out and retries.

Activities retry (in their transaction, then through Temporal with backoff): every
case completes, every transition recorded once, every email sent once.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from chaos.count import tally
from chaos.forms import Form
from chaos.lifecycle import LIFECYCLE_EVENTS, Driver, wait_completed
from chaos.report import Report
from chaos.rig import Stack, gather_limited, stack

POSTGRES = "postgres-outage"
SQLITE = "sqlite-locked"
BUSY = 6  # actions taken before the first fault


async def _lifecycles_under(
    s: Stack, fault: Callable[[], Coroutine[Any, Any, None]], cases: int, people: int
) -> tuple[list[str], Driver, float]:
    driver = Driver(s)
    began = time.monotonic()

    async def once_busy() -> None:
        # Cases must be on their way (workers connected, activities running) first.
        while driver.actions < BUSY:
            await asyncio.sleep(0.2)
        await fault()

    faults = asyncio.create_task(once_busy())
    try:
        case_ids = await gather_limited(people, [driver.lifecycle(n) for n in range(cases)])
    finally:
        await faults
    return case_ids, driver, time.monotonic() - began


async def run_postgres(form: Form, report: Report) -> None:
    cases, people = form.pick(short=12, long=80), form.pick(short=6, long=16)
    outages, down = form.pick(short=1, long=3), form.pick(short=15, long=40)
    rng = form.rng(POSTGRES)
    async with stack(POSTGRES, database="postgresql", proxied=True, workers=2) as s:
        proxy = s.database.proxy
        assert proxy is not None
        cut: list[str] = []

        async def fault() -> None:
            for _ in range(outages):
                await asyncio.sleep(rng.uniform(0.5, 4.0))
                reset = proxy.cut()
                await asyncio.sleep(down)
                proxy.restore()
                cut.append(f"{down} s ({reset} connections reset)")

        case_ids, driver, took = await _lifecycles_under(s, fault, cases, people)
        unfinished = await wait_completed(s, case_ids, timeout=300)
        report.injected += [
            f"PostgreSQL cut off from both workers {len(cut)} times: {', '.join(cut)}"
            f" (a proxy of the run's own; seed {form.seed})",
            f"{cases} IPA lifecycles, {people} people at once, 2 workers; {driver.actions}"
            f" actions in {took:.0f} s, {driver.retries} service calls retried",
        ]
        if unfinished:
            report.injected.append(f"{len(unfinished)} workflows not completed after 300 s")
        report.tally = await tally(s, case_ids, LIFECYCLE_EVENTS, must_complete=True)


def _hold_exclusive(path: str, seconds: float, held: threading.Event) -> None:
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def run_sqlite(form: Form, report: Report) -> None:
    cases, people = form.pick(short=12, long=80), form.pick(short=6, long=16)
    locks, hold = form.pick(short=1, long=3), form.pick(short=30, long=40)
    rng: random.Random = form.rng(SQLITE)
    async with stack(SQLITE, database="sqlite", workers=2) as s:
        path = str(s.database.sqlite_file)
        held_for: list[str] = []

        async def fault() -> None:
            for _ in range(locks):
                await asyncio.sleep(rng.uniform(0.5, 4.0))
                held = threading.Event()
                began = time.monotonic()
                await asyncio.to_thread(_hold_exclusive, path, hold, held)
                if held.is_set():
                    held_for.append(f"{time.monotonic() - began:.0f} s")

        case_ids, driver, took = await _lifecycles_under(s, fault, cases, people)
        unfinished = await wait_completed(s, case_ids, timeout=300)
        report.injected += [
            f"SQLite records file locked (BEGIN EXCLUSIVE from another connection)"
            f" {len(held_for)} times: {', '.join(held_for)} (seed {form.seed}); writers wait"
            " 5 s (busy_timeout) per try",
            f"{cases} IPA lifecycles, {people} people at once, 2 workers; {driver.actions}"
            f" actions in {took:.0f} s, {driver.retries} service calls retried",
        ]
        if unfinished:
            report.injected.append(f"{len(unfinished)} workflows not completed after 300 s")
        report.tally = await tally(s, case_ids, LIFECYCLE_EVENTS, must_complete=True)
