"""Types shared by every case workflow, its activities and the service layer.

Standard library only: workflow code imports this inside the sandbox. Every
dataclass crosses the Temporal boundary, so fields added later must have
defaults, or running cases stop decoding.
"""

# No `from __future__ import annotations` here: the data converter reads these types
# with typing.get_type_hints for every payload it decodes, and string annotations are
# compiled and evaluated again each time (about 4x the CPU; bench/RESULTS.md, target 6).
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SYSTEM_ACTOR = "system"

# Case status values.
OPEN = "open"
CLOSED = "closed"
# The stage of a closed case.
CLOSED_STAGE = "closed"


@dataclass
class Actor:
    """Who asks for an action: the service layer looks them up, the workflow trusts it."""

    email: str
    roles: list[str] = field(default_factory=list)
    name: str = ""
    # Whom they manage, directly or through others (the directory's management chains),
    # as far as the request needs: the service narrows it to the case's requester before
    # it reaches a workflow. `chain:requester` in a case type's viewers reads it.
    manages: list[str] = field(default_factory=list)


@dataclass
class ActionRequest:
    """The payload of the `act` update: one human action on a case."""

    action: str
    actor: Actor
    fields: dict[str, Any] = field(default_factory=dict)
    # The person an assigning action names (`ActionRule.assigns`), as the directory has
    # them (the service looks them up); absent if the directory has no such person.
    assignee: Actor | None = None


@dataclass
class Link:
    id: str
    relation: str


@dataclass
class StageDurations:
    """One stage's service levels from the policy file, as written there."""

    sla: str | None = None
    remind: str | None = None
    escalate_every: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class CasePolicy:
    """The part of the policy file a case runs under, fixed when it opens."""

    version: str
    bank_holidays: str
    stages: dict[str, StageDurations] = field(default_factory=dict)
    # ISO dates that are not working days besides the region's bank holidays.
    extra_holidays: list[str] = field(default_factory=list)
    # Working days are judged in this zone and end at this local time. Policies saved
    # before local time decode with these defaults.
    timezone: str = "Europe/London"
    working_day_ends: str = "17:00"


@dataclass
class CaseSnapshot:
    """A case as the read model stores it and the API returns it (less `actions`)."""

    id: str
    type: str
    status: str
    stage: str
    requester: str
    opened_at: datetime
    updated_at: datetime
    outcome: str | None = None
    assignee: str | None = None
    team: str | None = None
    # Whoever the open stage waits on: a person's email, or None when a team's queue owns it.
    owner: str | None = None
    due_at: datetime | None = None
    overdue: bool = False
    escalation_level: int = 0
    closed_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    # Named people of the case (requester_manager, investigator, caseworker, subject...):
    # the authorisation rules read them.
    parties: dict[str, str] = field(default_factory=dict)
    policy_version: str = ""
    confidential: bool = False


@dataclass
class EventIn:
    """An audit event as a workflow emits it. `key` makes appending it idempotent."""

    key: str
    kind: str
    actor: str
    at: datetime
    stage: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordRequest:
    """Write events (each once) and the case row, in one transaction."""

    case: CaseSnapshot
    events: list[EventIn] = field(default_factory=list)


@dataclass
class OffsetsRequest:
    """Instants `start + d` (or, `before`, `start - d`) for each duration, on the case's
    working-day calendar."""

    start: datetime
    durations: list[str]
    bank_holidays: str = "GB-ENG"
    extra_holidays: list[str] = field(default_factory=list)
    # "" asks for the rules before local time (UTC dates, the start's time of day): what
    # a case that was running then recorded.
    timezone: str = ""
    working_day_ends: str = "17:00"
    before: bool = False


@dataclass
class OffsetsResult:
    instants: list[datetime]


@dataclass
class EscalationTargetRequest:
    """Who is `level` steps up from a stage's owner.

    Level 1 is the owner's line manager, or a team queue's lead. People in
    `exclude` (parties to the case) are skipped and the chain goes one further.
    """

    level: int
    owner: str | None = None
    team: str | None = None
    exclude: list[str] = field(default_factory=list)


@dataclass
class EscalationTarget:
    email: str | None
    name: str = ""
    skipped: list[str] = field(default_factory=list)


@dataclass
class TeamMembersRequest:
    team: str


@dataclass
class TeamMembers:
    emails: list[str]


@dataclass
class MailRequest:
    """One email about one event. `key` (with the case id) makes its Message-ID."""

    key: str
    case_id: str
    kind: str  # a folder under templates/email/
    to: list[str]
    stage: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    confidential: bool = False


@dataclass
class MailResult:
    message_id: str
    status: str  # "sent", "already_sent", "failed", "no_recipients"
    detail: str = ""


@dataclass
class Clock:
    """The service-level clock of the open stage: when to remind, when it is due, escalation."""

    starts_at: datetime
    remind_at: datetime | None = None
    due_at: datetime | None = None
    next_escalation_at: datetime | None = None
    reminded: bool = False
    level: int = 0
    chain_ended: bool = False
    planned: bool = False
    # Whether the owner was told the clock started (for clocks that start later than the stage).
    announced: bool = False
    # When the stage began (moved on by time spent awaiting info): a policy change re-plans
    # the clock from here. None in clocks saved before it was kept.
    entered_at: datetime | None = None
    # An action set the due time (a hearing date, an expiry): no policy change moves it.
    set_by_action: bool = False


@dataclass
class CaseState:
    """Everything a case workflow carries across continue-as-new."""

    case: CaseSnapshot
    clock: Clock | None = None
    next_event: int = 1
    transitions: int = 0
    opened_recorded: bool = False
    # While awaiting_info: the stage that asked, its clock and when it paused.
    paused_stage: str | None = None
    paused_clock: Clock | None = None
    paused_at: datetime | None = None
    # Whether working days are judged in the policy's zone and end at its working day's
    # end; None until first asked (`Chase.counts_in_local_time`).
    local_time: bool | None = None
    # The case that raised this one and follows it (an IPA its policy exception), and
    # where this case stood when that case was last told.
    follower: str | None = None
    told: str | None = None
    # Cases that asked to follow this one later (`FOLLOW_SIGNAL`) -> where each was last
    # told ("" for not yet).
    followers: dict[str, str] = field(default_factory=dict)
    # What cases saved before their state was typed kept here, by name, as JSON values:
    # read into the typed fields once (`adopt_legacy`), then empty.
    extra: dict[str, Any] = field(default_factory=dict)

    def adopt_legacy(self) -> None:
        """Move what an older run kept in `extra` into the typed fields (no commands)."""
        extra = self.extra
        self.follower = self.follower or extra.pop("follower", None)
        self.told = self.told or extra.pop("told", None)
        self.followers = {**extra.pop("followers", {}), **self.followers}


@dataclass
class CaseInput:
    """What starts (or continues) a case workflow. The workflow ID is `case.id`."""

    case: CaseSnapshot
    policy: CasePolicy
    state: CaseState | None = None


@dataclass
class LinkedCaseRequest:
    """Ask for a new case number and the current policy of a case type to be raised."""

    type: str
    prefix: str
    year: int


@dataclass
class LinkedCasePlan:
    case_id: str
    policy: CasePolicy


@dataclass
class LinkedCaseNews:
    """A linked case tells the case that raised it where it stands now (a signal)."""

    case_id: str
    type: str
    status: str
    stage: str
    outcome: str | None = None


@dataclass
class CaseReadRequest:
    """Ask the read model for another case (an IPA checking the exception it names)."""

    case_id: str


@dataclass
class CaseRead:
    case: CaseSnapshot | None = None  # None: no such case


@dataclass
class ClockPlan:
    """How a stage's clock is planned under a policy: from `start`, the clock starts after
    `start_after` (if any), then `remind` and `due` are counted from there."""

    start: datetime
    start_after: str | None = None
    remind: str | None = None
    due: str | None = None


@dataclass
class PolicyChange:
    """The `policy_changed` update: the case now runs under `policy` (its type's part)."""

    policy: CasePolicy


@dataclass
class PolicyChangeResult:
    case_id: str
    old_version: str
    new_version: str
    old_due: datetime | None = None
    new_due: datetime | None = None
    changed: bool = True  # False: already under that version, or closed
    stage: str = ""


@dataclass
class PolicyPreview:
    """The `policy_preview` query: what `policy_changed` would re-plan under a policy.
    `plan` is None when no policy-timed clock runs (none, or one an action set)."""

    case_id: str
    stage: str
    version: str
    due_at: datetime | None = None
    plan: ClockPlan | None = None
