"""Explaining an email received more than once, or saying it cannot be explained.

send_mail notes a delivery durably (its heartbeat to Temporal, then the `sent_mail`
row) only after the relay has answered 250; a worker killed between the two leaves a
retry that cannot know the relay has the message, and sends it again. SMTP cannot be
exactly-once from the sending side, so that one cause is accepted (at-least-once);
every other duplicate fails the run.

A duplicate is "resent after a SIGKILL inside SMTP's at-least-once window" only when
every copy but the last was followed, within WINDOW_BOUND, by the SIGKILL of the very
process that sent it, the next copy arrived after that kill from another process, and
the history shows one send_mail activity for the Message-ID that took at least as
many attempts as there were copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise

from chaos.mail import Copy
from chaos.processes import Kill

# How long after a copy reached the relay the kill of its sender may come and still
# explain a resend. The window it stands for (the sender reading the 250, one turn of
# its event loop, the heartbeat encoded and handed to the SDK core, one gRPC call the
# dev server persists; the sent_mail row written beside it) is measured in
# milliseconds, tens of them on this loaded machine (docs/RELIABILITY.md); a second
# leaves room for a stalled process without letting a lost heartbeat pass: by then
# one of the two notes is durable, and a resend after a later kill is a bug.
WINDOW_BOUND = 1.0


@dataclass(frozen=True)
class SendActivity:
    """One send_mail activity in a history, as its last recorded attempt left it."""

    attempts: int  # the attempt that ended it (ActivityTaskStarted.attempt); 0 if none
    pid: int | None  # the worker process of that attempt (its identity, pid@host)


@dataclass(frozen=True)
class Verdict:
    message_id: str
    explained: bool
    text: str


def pid_of(identity: str) -> int | None:
    """A worker's default identity is `pid@hostname`."""
    head = identity.partition("@")[0]
    return int(head) if head.isdigit() else None


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3]


def _sender(copy: Copy, activity: SendActivity, workers: Mapping[int, str]) -> str:
    who = f"{workers.get(copy.pid, 'pid')} {copy.pid}" if copy.pid else "an unknown process"
    if copy.pid is not None and copy.pid == activity.pid:
        return f"{who}, attempt {activity.attempts} (the last)"
    if activity.attempts == 2:
        return f"{who}, attempt 1"
    return f"{who}, an earlier attempt (1 to {activity.attempts - 1})"


def classify(
    message_id: str,
    copies: Sequence[Copy],
    kills: Sequence[Kill],
    activities: Sequence[SendActivity],
    workers: Mapping[int, str],
) -> Verdict:
    """Explain `copies` (more than one) of one Message-ID, or say why they are not."""
    ordered = sorted(copies, key=lambda c: c.at)

    def unexplained(why: str) -> Verdict:
        arrivals = ", ".join(f"{_clock(c.at)} from pid {c.pid}" for c in ordered)
        return Verdict(message_id, False, f"{message_id}: {why} (received {arrivals})")

    if len(activities) != 1:
        return unexplained(f"{len(activities)} send_mail activities in the histories, not 1")
    [activity] = activities
    if activity.attempts < len(ordered):
        return unexplained(
            f"received {len(ordered)} times from an activity that took {activity.attempts}"
            " attempt(s)"
        )
    steps = [f"copy 1 at {_clock(ordered[0].at)} from {_sender(ordered[0], activity, workers)}"]
    for n, (copy, after) in enumerate(pairwise(ordered), start=1):
        if copy.pid is None:
            return unexplained(f"copy {n}'s sender is unknown")
        kill = next(
            (k for k in kills if k.pid == copy.pid and 0 <= k.at - copy.at <= WINDOW_BOUND),
            None,
        )
        if kill is None:
            return unexplained(
                f"copy {n}'s sender (pid {copy.pid}) was not SIGKILLed within"
                f" {WINDOW_BOUND:g} s after it"
            )
        if after.at <= kill.at or after.pid == copy.pid:
            return unexplained(f"copy {n + 1} did not come from a later attempt")
        steps.append(
            f"{kill.worker} (pid {kill.pid}) SIGKILLed {1000 * (kill.at - copy.at):.0f} ms after"
        )
        steps.append(
            f"copy {n + 1} {after.at - copy.at:.1f} s after copy {n}, from"
            f" {_sender(after, activity, workers)}"
        )
    return Verdict(message_id, True, f"{message_id}: " + "; ".join(steps))
