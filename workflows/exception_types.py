"""Security policy exception (policy 5.2): the one table of its stages, actions and
actors, its details, and the limits on extending one.

Standard library only: the workflow, the service layer, the pages and the tests
all read this module.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows.rules import (
    CONFLICT,
    INVALID,
    ActionRule,
    CaseTypeRules,
    Field,
    Refusal,
    ask_requester_actions,
    common_actions,
)

TYPE = "policy_exception"

TRIAGE = "triage"
AWAITING_INFO = "awaiting_info"
RISK_ASSESSMENT = "risk_assessment"
DECISION = "decision"
ACTIVE = "active"

STAGES = (TRIAGE, AWAITING_INFO, RISK_ASSESSMENT, DECISION, ACTIVE)
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

# Who owns each stage: a party of the case, or None for the SAC queue. The decision is
# the SAC leads' (`DECISION_QUEUE`), whoever triaged or assessed it; an active exception
# is its requester's, who is told before it expires.
STAGE_OWNER: dict[str, str | None] = {
    TRIAGE: None,
    AWAITING_INFO: "requester",
    RISK_ASSESSMENT: None,
    DECISION: None,
    ACTIVE: "requester",
}
DECISION_QUEUE = "sac_lead"

REASON = Field("reason")
# Four eyes: whoever assessed the risk does not decide, nor does the person who asked.
DECIDERS_NOT = ("assessor", "requester")

RULES = CaseTypeRules(
    type=TYPE,
    prefix="PEX",
    team="sac",
    stages=STAGES,
    workflow="PolicyExceptionWorkflow",
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
        ActionRule("reject", frozenset({TRIAGE}), ("role:sac",), (REASON,), label="Reject"),
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
        ),
        # The same name as at triage, other people: `CaseTypeRules.action` picks by stage.
        ActionRule(
            "reject",
            frozenset({DECISION}),
            ("role:sac_lead",),
            (REASON,),
            not_party=DECIDERS_NOT,
            label="Reject",
        ),
        ActionRule(
            "extend",
            frozenset({ACTIVE}),
            ("role:sac_lead",),
            (Field("days", "int", min=1, max=MAX_VALIDITY_DAYS, policy="5.2"), REASON),
            label="Extend",
            policy="5.2",
        ),
        ActionRule("revoke", frozenset({ACTIVE}), ("role:sac",), (REASON,), label="Revoke"),
        ActionRule("withdraw", BEFORE_ACTIVE, ("party:requester",), label="Withdraw"),
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
