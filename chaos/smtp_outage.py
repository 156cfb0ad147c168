"""The SMTP relay down while reminders and escalations fall due, then back.

send_mail raises on a refused connection and Temporal retries it with backoff
(workflows/engine.py: MAIL_RETRY, at most 5 minutes apart), so every email must
arrive once the relay is back, and none twice.
"""

from __future__ import annotations

import asyncio
import time

from chaos.count import tally
from chaos.forms import Form
from chaos.lifecycle import CHASED_EVENTS, Driver
from chaos.report import Report
from chaos.rig import stack
from chaos.timers import MAILS_PER_CASE, chased, open_with_timers, wait_for_mail

NAME = "smtp-outage"


async def run(form: Form, report: Report) -> None:
    cases = form.pick(short=12, long=150)
    margin, due_after = form.pick(short=10, long=20), 10
    async with stack(NAME, workers=2) as s:
        opened = await open_with_timers(s, Driver(s), cases, margin, due_after, pace=1.0)
        case_ids = opened.case_ids
        # Opening mails (to the requester and the manager) go out before the outage.
        await wait_for_mail(s, 2 * cases, timeout=60)
        before = len(s.mail.snapshot())
        already = await chased(s, case_ids, "reminded")
        s.mail.stop()
        stopped = time.monotonic()
        # Down until every escalation has fallen due (recorded before its mail is sent),
        # and a little longer, so that retries are under way.
        deadline = time.monotonic() + opened.longest_remind + due_after + 300
        while await chased(s, case_ids, "escalated") < cases and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
        await asyncio.sleep(5)
        fell_due = (await chased(s, case_ids, "reminded")) - already
        fell_due += await chased(s, case_ids, "escalated")
        during = len(s.mail.snapshot()) - before
        s.mail.start()
        outage = time.monotonic() - stopped
        await wait_for_mail(s, MAILS_PER_CASE * cases, timeout=400)
        report.injected += [
            f"{cases} IPA requests opened in {opened.seconds:.0f} s (all reminders due"
            f" {cases + margin} s after the first was opened, escalations {due_after} s"
            f" later); {before} opening emails delivered first",
            f"SMTP relay stopped (connections refused) for {outage:.0f} s while {fell_due}"
            f" reminders and escalations fell due; {during} emails got through meanwhile",
            f"relay back on the same port; every email in {time.monotonic() - stopped:.0f} s"
            " from the stop",
        ]
        report.tally = await tally(s, case_ids, CHASED_EVENTS, must_complete=False)
