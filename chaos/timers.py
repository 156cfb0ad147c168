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

from chaos.lifecycle import Driver
from chaos.rig import Stack, gather_limited, policy_text
from domain.policy import load_policy
from models import CaseEvent

MAILS_PER_CASE = 4  # opened, action needed (manager), reminder, escalation (director)
BATCH = 20


@dataclass(frozen=True)
class Opened:
    case_ids: list[str]
    seconds: float  # to open them all
    longest_remind: int  # seconds
    due_after: int  # seconds from reminder to escalation


async def open_with_timers(
    s: Stack, driver: Driver, cases: int, margin: int, due_after: int, pace: float
) -> Opened:
    """Open `cases` requests so that every reminder falls due at one moment: `pace`
    seconds per case plus `margin` from the start, however fast this machine opens them
    (each batch opens under a policy whose remind is the time left until then; the
    policy goes with each case as it opens: the service layer's copy of the file).
    Should opening take longer than that, the first cases' timers fire before it ends;
    the scenario counts and says how many were still pending at its fault."""
    began, longest = time.monotonic(), 0
    due = began + pace * cases + margin
    case_ids: list[str] = []
    for first in range(0, cases, BATCH):
        remind = max(margin, math.ceil(due - time.monotonic()))
        longest = max(longest, remind)
        policy_file = s.workdir / f"policy-{first}.toml"
        endorsement = {"sla": f"PT{remind + due_after}S", "remind": f"PT{remind}S"}
        policy_file.write_text(policy_text(endorsement))
        s.svc.policy = load_policy(policy_file)
        batch = range(first, min(first + BATCH, cases))
        case_ids += await gather_limited(20, [driver.open(n) for n in batch])
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
