"""The Temporal dev server, its state in a SQLite file, killed with SIGKILL while every
case waits on a timer, then started again on the same file.

Every timer pending at the kill must fire afterwards: every reminder and escalation
arrives, once (chaos/timers.py sets the clocks).
"""

from __future__ import annotations

import asyncio

from chaos.count import tally
from chaos.forms import Form
from chaos.lifecycle import CHASED_EVENTS, Driver
from chaos.report import Report
from chaos.rig import stack
from chaos.timers import MAILS_PER_CASE, chased, open_with_timers, wait_for_mail

NAME = "server-restart"


async def run(form: Form, report: Report) -> None:
    cases = form.pick(short=20, long=1000)
    margin, down = form.pick(short=15, long=30), form.pick(short=5, long=15)
    async with stack(NAME, workers=2) as s:
        # 0.12 to 0.28 s per case opened on the machine of docs/RELIABILITY.md.
        pace = 0.6 if form.long else 1.0
        opened = await open_with_timers(s, Driver(s), cases, margin, due_after=10, pace=pace)
        case_ids = opened.case_ids
        reminded = await chased(s, case_ids, "reminded")
        escalated = await chased(s, case_ids, "escalated")
        s.server.kill()
        await asyncio.sleep(down)
        await s.restart_server()
        restarted = s.restart_dead_workers()
        report.injected += [
            f"{cases} IPA requests opened in {opened.seconds:.0f} s, each waiting on a durable"
            f" timer: all reminders due {pace * cases + margin:.0f} s after the first was"
            f" opened (PT{opened.longest_remind}S at most), escalations {opened.due_after} s"
            " later",
            f"SIGKILL of the dev server with {cases - escalated} timers pending"
            f" ({cases - reminded} reminders and {cases - escalated} escalations still to"
            f" fall due); down {down} s, restarted on the same SQLite file",
        ]
        if restarted:
            report.injected.append(f"{restarted} workers had exited and were restarted")
        await wait_for_mail(
            s, MAILS_PER_CASE * cases, timeout=opened.longest_remind + opened.due_after + 300
        )
        report.injected.append(
            f"after the restart: {await chased(s, case_ids, 'reminded') - reminded} reminders"
            f" and {await chased(s, case_ids, 'escalated') - escalated} escalations fired"
        )
        report.tally = await tally(s, case_ids, CHASED_EVENTS, must_complete=False)
