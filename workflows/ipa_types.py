"""Individual Professional Account approval (policy 5.1, 3.2): the one table of its
stages, actions and actors, its details and its intake rules.

Standard library only: the workflow, the service layer, the pages and the tests
all read this module.
"""

# No `from __future__ import annotations`: the state dataclasses below cross the Temporal
# boundary, and the data converter evaluates string annotations on every decode.
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workflows import exception_types as pex
from workflows.common import OPEN, CaseInput, CaseSnapshot, CaseState
from workflows.rules import (
    AWAITING_INFO_STAGE,
    INVALID,
    ActionRule,
    CaseTypeRules,
    Field,
    Refusal,
    Stage,
    ask_requester_actions,
    common_actions,
)

TYPE = "ipa_approval"

MANAGER_ENDORSEMENT = "manager_endorsement"
SAC_REVIEW = "sac_review"
AWAITING_INFO = "awaiting_info"
AWAITING_EXCEPTION = "awaiting_exception"
ACTIVE = "active"

# The process, stage by stage: whom each waits on (a party of the case, or whoever SAC
# assigns, else the SAC queue) and what its clock does.
ROWS = (
    # The requester's line manager endorses or declines (5.1).
    Stage(MANAGER_ENDORSEMENT, owner="party:requester_manager"),
    # The Security Advice Centre approves, rejects or asks the requester.
    Stage(SAC_REVIEW),
    # The requester answers SAC's question; unanswered, the request lapses.
    AWAITING_INFO_STAGE,
    # A personal device (5.1): follows its policy exception, chased under that case's SLAs.
    Stage(AWAITING_EXCEPTION),
    # The account in use: its holder attests once a year (3.2), chased like any stage.
    Stage(ACTIVE, owner="party:requester", clock_starts="attest_every"),
)
STAGES = tuple(row.name for row in ROWS)
BEFORE_ACTIVE = frozenset({MANAGER_ENDORSEMENT, SAC_REVIEW, AWAITING_INFO, AWAITING_EXCEPTION})

# Outcomes of a closed IPA case.
DECLINED = "declined"
REJECTED = "rejected"
LAPSED = "lapsed"
REVOKED = "revoked"
RETIRED = "retired"
WITHDRAWN = "withdrawn"

# How an IPA on a personal device and its policy exception name each other (5.1).
EXCEPTION = "exception"
EXCEPTION_FOR = "exception_for"

ACCOUNT_KINDS = ("individual_professional", "official", "linkedin", "personal", "trade_union")
DEVICES = ("dwp_managed", "personal")

REASON = Field("reason")


@dataclass
class IpaState(CaseState):
    """What an IPA carries beside every case's state, across continue-as-new."""

    # The policy exception an account on a personal device waits on, or runs under (5.1).
    exception_case: str | None = None
    # When the holder last attested (3.2).
    last_attested_at: datetime | None = None

    def adopt_legacy(self) -> None:
        super().adopt_legacy()
        self.exception_case = self.exception_case or self.extra.pop("exception_case", None)
        attested = self.extra.pop("last_attested_at", None)
        if attested and self.last_attested_at is None:
            self.last_attested_at = datetime.fromisoformat(attested)


@dataclass
class IpaInput(CaseInput):
    state: IpaState | None = None


RULES = CaseTypeRules(
    type=TYPE,
    prefix="IPA",
    team="sac",
    rows=ROWS,
    workflow="IpaApprovalWorkflow",
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
        Field("account_kind", "choice", choices=ACCOUNT_KINDS, policy="5.1"),
        Field("platform", max=100),
        Field("handle", max=200),
        Field("justification"),
        Field("device", "choice", choices=DEVICES, policy="5.1"),
        Field("contact_email", "email", policy="5.1"),
        # A policy exception of the requester's to cover a personal device (5.1), instead
        # of one raised on approval: followed if open, used at once if approved.
        Field("exception_case", required=False, max=40, policy="5.1"),
    ),
    actions=(
        ActionRule(
            "endorse",
            frozenset({MANAGER_ENDORSEMENT}),
            ("party:requester_manager",),
            label="Endorse",
            policy="5.1",
        ),
        ActionRule(
            "decline",
            frozenset({MANAGER_ENDORSEMENT}),
            ("party:requester_manager",),
            (REASON,),
            label="Decline",
            irreversible=True,
        ),
        ActionRule(
            "approve", frozenset({SAC_REVIEW}), ("role:sac",), label="Approve", irreversible=True
        ),
        ActionRule(
            "reject",
            frozenset({SAC_REVIEW}),
            ("role:sac",),
            (REASON,),
            label="Reject",
            irreversible=True,
        ),
        *ask_requester_actions(frozenset({SAC_REVIEW}), ("role:sac",)),
        ActionRule(
            "attest", frozenset({ACTIVE}), ("party:requester",), label="Attest", policy="3.2"
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
            "retire", frozenset({ACTIVE}), ("party:requester",), label="Retire", irreversible=True
        ),
        ActionRule(
            "withdraw", BEFORE_ACTIVE, ("party:requester",), label="Withdraw", irreversible=True
        ),
        *common_actions("sac", frozenset(STAGES)),
    ),
)


def intake_refusal(details: dict[str, Any], org_domains: tuple[str, ...]) -> Refusal | None:
    """The policy's reason to refuse this request before anything starts, if any."""
    kind = details.get("account_kind")
    if kind == "personal":
        return Refusal(
            INVALID,
            "account_kind: personal accounts need no approval (policy 5.1)",
            "account_kind",
        )
    if kind == "trade_union":
        return Refusal(
            INVALID,
            "account_kind: official trade union accounts are outside this policy (policy 7.2)",
            "account_kind",
        )
    domain = str(details.get("contact_email", "")).rpartition("@")[2].lower()
    if kind == "linkedin" and any(domain == d or domain.endswith("." + d) for d in org_domains):
        return Refusal(
            INVALID,
            "contact_email: LinkedIn accounts must use a personal email address (policy 5.1)",
            "contact_email",
        )
    return None


def exception_request(case: CaseSnapshot) -> dict[str, Any]:
    """The details of the policy exception an IPA on a personal device raises (5.1)."""
    details = case.details
    return {
        "policy_section": "5.1",
        "requirement": f"Individual Professional Account {details.get('handle', '')} on "
        f"{details.get('platform', '')}, used from a personal device",
        "justification": details.get("justification", ""),
        "risk": "DWP business conducted from a device DWP does not manage: content and "
        "credentials outside DWP's controls, and the account harder to recover if the "
        "device is lost or compromised.",
        "compensating_controls": "Multi-factor authentication on the account; the device "
        "kept updated, encrypted and screen-locked; no DWP information stored on it; the "
        "account used for DWP business only (policy 5.1).",
        "duration_days": pex.MAX_VALIDITY_DAYS,
        "related_case": case.id,
    }


def exception_unusable(exception: CaseSnapshot | None, name: str, requester: str) -> str | None:
    """Why the exception an IPA's details name cannot cover it, if it cannot: it must be an
    open policy exception of the same requester (waited on until it is approved)."""
    if exception is None:
        return f"{name}: no such case"
    if exception.type != pex.TYPE:
        return f"{name}: not a policy exception"
    if exception.requester != requester:
        return f"{name}: raised by someone else"
    if exception.status != OPEN:
        return f"{name}: closed ({exception.outcome})"
    return None


def exception_ended(exception_id: str, outcome: str | None) -> str:
    """Why an IPA closes with its policy exception: 'policy exception PEX-... was rejected'."""
    happened = outcome if outcome in (pex.EXPIRED, pex.LAPSED) else f"was {outcome}"
    return f"policy exception {exception_id} {happened}"
