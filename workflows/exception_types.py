"""Security policy exception (policy 5.2): the one table of its stages, actions and
actors, its details, and the limits on extending one.

Standard library only: the workflow, the service layer, the pages and the tests
all read this module.
"""

# No `from __future__ import annotations`: the state dataclasses below cross the Temporal
# boundary, and the data converter evaluates string annotations on every decode.
from dataclasses import dataclass
from datetime import datetime, timedelta

from workflows.common import CaseInput, CaseState
from workflows.rules import (
    AWAITING_INFO_STAGE,
    CONFLICT,
    INVALID,
    QUEUE,
    ActionRule,
    CaseTypeRules,
    Field,
    Refusal,
    Stage,
    ask_requester_actions,
    common_actions,
)

TYPE = "policy_exception"

TRIAGE = "triage"
AWAITING_INFO = "awaiting_info"
RISK_ASSESSMENT = "risk_assessment"
DECISION = "decision"
ACTIVE = "active"

# The process, stage by stage. The decision is the SAC leads' (their queue), whoever
# triaged or assessed it; an active exception is its requester's, told before it expires.
ROWS = (
    # SAC accepts, rejects or asks the requester.
    Stage(TRIAGE),
    AWAITING_INFO_STAGE,
    # A SAC officer assesses the risk and the compensating controls.
    Stage(RISK_ASSESSMENT),
    # A SAC lead who did not assess it approves or rejects (four eyes).
    Stage(DECISION, owner=QUEUE, queue="sac_lead", assignee_role="sac_lead"),
    # Until it expires: its clock starts with the expiry notice, and when due it expires.
    Stage(ACTIVE, owner="party:requester", when_due="expire", clock_starts="expiry_notice"),
)
STAGES = tuple(row.name for row in ROWS)
BEFORE_ACTIVE = frozenset({TRIAGE, AWAITING_INFO, RISK_ASSESSMENT, DECISION})

# Outcomes of a closed policy exception.
REJECTED = "rejected"
LAPSED = "lapsed"
REVOKED = "revoked"
EXPIRED = "expired"
WITHDRAWN = "withdrawn"

RISK_RATINGS = ("low", "medium", "high")
# An exception runs at most this long from its approval, extensions included (API.md).
MAX_VALIDITY_DAYS = 365
MAX_EXTENSIONS = 2

REASON = Field("reason")


@dataclass
class ExceptionState(CaseState):
    """What a policy exception carries beside every case's state, once approved."""

    approved_at: datetime | None = None
    expires_at: datetime | None = None  # duration_days after approval, and extensions
    extensions: int = 0

    def adopt_legacy(self) -> None:
        super().adopt_legacy()
        for name in ("approved_at", "expires_at"):
            text = self.extra.pop(name, None)
            if text and getattr(self, name) is None:
                setattr(self, name, datetime.fromisoformat(text))
        self.extensions = self.extensions or self.extra.pop("extensions", 0)


@dataclass
class ExceptionInput(CaseInput):
    state: ExceptionState | None = None


# Four eyes: whoever assessed the risk does not decide, nor does the person who asked.
DECIDERS_NOT = ("assessor", "requester")

RULES = CaseTypeRules(
    type=TYPE,
    prefix="PEX",
    team="sac",
    rows=ROWS,
    workflow="PolicyExceptionWorkflow",
    # Need to know (API.md): the requester, their management chain, SAC, auditors and
    # admins see it whole; anyone else gets 404 and never finds it in a list.
    full_viewers=(
        "party:requester",
        "chain:requester",
        "party:requester_manager",
        "role:sac",
        "role:sac_lead",
        "role:auditor",
        "role:admin",
    ),
    details=(
        Field("policy_section", max=20),
        Field("requirement", max=500),
        Field("justification"),
        Field("risk"),
        Field("compensating_controls"),
        Field("duration_days", "int", min=1, max=MAX_VALIDITY_DAYS, policy="5.2"),
        Field("related_case", required=False, max=40),
    ),
    actions=(
        ActionRule("accept", frozenset({TRIAGE}), ("role:sac",), label="Accept", policy="5.2"),
        ActionRule(
            "reject",
            frozenset({TRIAGE}),
            ("role:sac",),
            (REASON,),
            label="Reject",
            irreversible=True,
        ),
        *ask_requester_actions(frozenset({TRIAGE}), ("role:sac",)),
        ActionRule(
            "submit_assessment",
            frozenset({RISK_ASSESSMENT}),
            ("role:sac",),
            (Field("risk_rating", "choice", choices=RISK_RATINGS), Field("assessment")),
            label="Submit the risk assessment",
        ),
        ActionRule(
            "approve",
            frozenset({DECISION}),
            ("role:sac_lead",),
            not_party=DECIDERS_NOT,
            label="Approve",
            policy="5.2",
            irreversible=True,
        ),
        # The same name as at triage, other people: `CaseTypeRules.action` picks by stage.
        ActionRule(
            "reject",
            frozenset({DECISION}),
            ("role:sac_lead",),
            (REASON,),
            not_party=DECIDERS_NOT,
            label="Reject",
            irreversible=True,
        ),
        ActionRule(
            "extend",
            frozenset({ACTIVE}),
            ("role:sac_lead",),
            (Field("days", "int", min=1, max=MAX_VALIDITY_DAYS, policy="5.2"), REASON),
            label="Extend",
            policy="5.2",
        ),
        ActionRule(
            "revoke",
            frozenset({ACTIVE}),
            ("role:sac",),
            (REASON,),
            label="Revoke",
            irreversible=True,
        ),
        ActionRule(
            "withdraw", BEFORE_ACTIVE, ("party:requester",), label="Withdraw", irreversible=True
        ),
        *common_actions("sac", frozenset(STAGES)),
    ),
)


def extension_refusal(
    *, extensions: int, approved_at: datetime, expires_at: datetime, days: int
) -> Refusal | None:
    """Why an active exception may not be extended by `days`, if it may not (policy 5.2)."""
    if extensions >= MAX_EXTENSIONS:
        return Refusal(
            CONFLICT,
            f"action: an exception is extended at most {MAX_EXTENSIONS} times (policy 5.2)",
            "action",
        )
    latest = approved_at + timedelta(days=MAX_VALIDITY_DAYS)
    if expires_at + timedelta(days=days) > latest:
        room = max((latest - expires_at).days, 0)
        return Refusal(
            INVALID,
            f"days: at most {room} more days: an exception runs at most {MAX_VALIDITY_DAYS} "
            f"days from its approval, until {latest:%Y-%m-%d} (policy 5.2)",
            "days",
        )
    return None
