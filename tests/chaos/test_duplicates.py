"""The chaos suite's verdict on an email received twice: explained only as a resend after
its sender was SIGKILLed inside SMTP's at-least-once window, anything else not."""

from __future__ import annotations

import pytest

from chaos.duplicates import WINDOW_BOUND, SendActivity, Verdict, classify, pid_of
from chaos.mail import Copy
from chaos.processes import Kill

MID = "<IPA-2026-000002.m5@casework>"
T = 1_790_000_000.0  # a wall-clock moment; only differences matter
KILLED, SURVIVOR, RESTARTED = 4101, 4202, 4303
WORKERS = {KILLED: "worker-0", SURVIVOR: "worker-1", RESTARTED: "worker-0"}


def verdict(
    copies: list[Copy], kills: list[Kill], activities: list[SendActivity] | None = None
) -> Verdict:
    if activities is None:
        activities = [SendActivity(attempts=2, pid=SURVIVOR)]
    return classify(MID, copies, kills, activities, WORKERS)


def test_a_resend_after_the_sender_was_killed_just_after_the_relay_took_it_is_explained() -> None:
    v = verdict(
        [Copy(T + 61.0, SURVIVOR), Copy(T, KILLED)],  # in any order: sorted by arrival
        [Kill(T - 30, "worker-0", 999), Kill(T + 0.04, "worker-0", KILLED)],
    )
    assert v.explained
    assert v.message_id == MID
    assert "worker-0 (pid 4101) SIGKILLed 40 ms after" in v.text
    assert "from worker-1 4202, attempt 2 (the last)" in v.text
    assert "from worker-0 4101, attempt 1" in v.text


def test_three_copies_each_followed_by_its_senders_kill_are_explained() -> None:
    v = verdict(
        [Copy(T, KILLED), Copy(T + 60, RESTARTED), Copy(T + 125, SURVIVOR)],
        [Kill(T + 0.2, "worker-0", KILLED), Kill(T + 60.5, "worker-0", RESTARTED)],
        [SendActivity(attempts=3, pid=SURVIVOR)],
    )
    assert v.explained
    assert "from worker-0 4303, an earlier attempt (1 to 2)" in v.text
    assert "from worker-1 4202, attempt 3 (the last)" in v.text


def test_the_later_copy_may_come_from_an_attempt_that_was_itself_cut_short() -> None:
    # Attempt 2 resent and heartbeated before its own kill; attempt 3 then sent nothing.
    v = verdict(
        [Copy(T, KILLED), Copy(T + 60, RESTARTED)],
        [Kill(T + 0.1, "worker-0", KILLED), Kill(T + 70, "worker-0", RESTARTED)],
        [SendActivity(attempts=3, pid=SURVIVOR)],
    )
    assert v.explained


@pytest.mark.parametrize(
    ("kills", "why"),
    [
        ([], "not SIGKILLed within"),
        ([Kill(T + WINDOW_BOUND + 0.5, "worker-0", KILLED)], "not SIGKILLed within"),
        ([Kill(T - 0.1, "worker-0", KILLED)], "not SIGKILLed within"),  # before it arrived
        ([Kill(T + 0.1, "worker-1", SURVIVOR)], "not SIGKILLed within"),  # someone else
    ],
    ids=["no-kill", "kill-too-late", "kill-before-the-copy", "another-process-killed"],
)
def test_a_duplicate_without_its_senders_kill_just_after_is_not_explained(
    kills: list[Kill], why: str
) -> None:
    v = verdict([Copy(T, KILLED), Copy(T + 61, SURVIVOR)], kills)
    assert not v.explained
    assert why in v.text
    assert MID in v.text


def test_a_copy_that_arrived_before_the_kill_did_not_come_from_a_later_attempt() -> None:
    v = verdict([Copy(T, KILLED), Copy(T + 0.1, SURVIVOR)], [Kill(T + 0.3, "worker-0", KILLED)])
    assert not v.explained
    assert "copy 2 did not come from a later attempt" in v.text


def test_a_copy_from_an_unknown_sender_is_not_explained() -> None:
    v = verdict([Copy(T, None), Copy(T + 61, SURVIVOR)], [Kill(T + 0.1, "worker-0", KILLED)])
    assert not v.explained
    assert "sender is unknown" in v.text


@pytest.mark.parametrize(
    ("activities", "why"),
    [
        ([SendActivity(attempts=1, pid=SURVIVOR)], "took 1 attempt(s)"),
        ([SendActivity(2, SURVIVOR), SendActivity(1, SURVIVOR)], "2 send_mail activities"),
        ([], "0 send_mail activities"),
    ],
    ids=["never-retried", "scheduled-twice", "never-scheduled"],
)
def test_the_histories_must_show_one_activity_retried_at_least_once_per_copy(
    activities: list[SendActivity], why: str
) -> None:
    v = verdict(
        [Copy(T, KILLED), Copy(T + 61, SURVIVOR)],
        [Kill(T + 0.1, "worker-0", KILLED)],
        activities,
    )
    assert not v.explained
    assert why in v.text


def test_a_worker_identity_names_its_process() -> None:
    assert pid_of("4101@host.example") == 4101
    assert pid_of("custom-identity") is None
