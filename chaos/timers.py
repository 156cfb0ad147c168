"""Cases whose clocks run out during the run: each IPA's endorsement stage is given short
ISO durations (a policy file written for the run), so the manager is reminded, then
the director is told it is overdue (one escalation: the policy sets no `escalate_every`).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.policy import load_policy
from chaos.lifecycle import Driver
from chaos.rig import Stack, gather_limited, policy_text
from models import CaseEvent

MAILS_PER_CASE = 4  # opened, action needed (manager), reminder, escalation (director)
FIRST_BATCH, BATCH = 5, 20
# Seconds per case opened, until measured: 0.12 to 1.2 on the machine of RELIABILITY.md.
# Too low, and the first few cases' timers fire before the fault (the report says so).
FIRST_GUESS = 0.3


@dataclass(frozen=True)
class Opened:
    case_ids: list[str]
    seconds: float  # to open them all
    longest_remind: int  # seconds
    due_after: int  # seconds from reminder to escalation


async def open_with_timers(
    s: Stack, driver: Driver, cases: int, margin: int, due_after: int
) -> Opened:
    """Open `cases` requests so that every reminder falls due about `margin` seconds after
    the last is opened, however fast this machine opens them: each batch opens under a
    policy whose remind is the time the rest should take, at the last batch's pace, plus
    the margin (the first two batches, while workers warm up, under a guess). The policy
    goes with each case as it opens (the service layer's copy of the file)."""
    began, longest = time.monotonic(), 0
    case_ids: list[str] = []
    per_case: float | None = None  # seconds, as the last batch took (the first warms up)
    starts = [0, *range(FIRST_BATCH, cases, BATCH)] if cases > FIRST_BATCH else [0]
    for n, (first, end) in enumerate(zip(starts, [*starts[1:], cases], strict=True)):
        if per_case is None:
            remind = math.ceil(FIRST_GUESS * cases + margin)
        else:
            remind = math.ceil(per_case * (cases - len(case_ids)) + margin)
        longest = max(longest, remind)
        policy_file = s.workdir / f"policy-{first}.toml"
        endorsement = {"sla": f"PT{remind + due_after}S", "remind": f"PT{remind}S"}
        policy_file.write_text(policy_text(endorsement))
        s.svc.policy = load_policy(policy_file)
        batch_began = time.monotonic()
        case_ids += await gather_limited(20, [driver.open(i) for i in range(first, end)])
        if n > 0:
            per_case = (time.monotonic() - batch_began) / (end - first)
    return Opened(case_ids, time.monotonic() - began, longest, due_after)


async def chased(s: Stack, case_ids: list[str], kind: str) -> int:
    """How many events of `kind` ("reminded", "escalated") the cases have recorded."""
    query = select(func.count()).where(CaseEvent.case_id.in_(case_ids), CaseEvent.kind == kind)

    def count(session: Session) -> int:
        return int(session.scalar(query) or 0)

    return await s.svc.run(count)


async def wait_for_mail(s: Stack, expected: int, timeout: float) -> None:
    """Until the relay has `expected` distinct Message-IDs, or the timeout."""
    deadline = time.monotonic() + timeout
    while len(s.mail.snapshot()) < expected and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
