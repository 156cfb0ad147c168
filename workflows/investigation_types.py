"""Abuse investigation (policy 4, 6.3, Annex 1): the one table of its stages, actions
and actors, its details and its intake rules.

Confidential: seen whole by sirt, sirt_lead, the assigned investigator, auditors and
admins; the reporter (the requester) sees only the case's outline; anyone else gets 404.

Standard library only: the workflow, the service layer, the pages and the tests
all read this module.
"""

# No `from __future__ import annotations`: the state dataclasses below cross the Temporal
# boundary, and the data converter evaluates string annotations on every decode.
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from workflows.common import CaseInput, CaseState
from workflows.rules import (
    INVALID,
    QUEUE,
    ActionRule,
    Assigns,
    CaseTypeRules,
    Field,
    Refusal,
    Stage,
    clean_fields,
    common_actions,
)

TYPE = "abuse_investigation"

TRIAGE = "triage"
INVESTIGATION = "investigation"
REVIEW = "review"

# The process, stage by stage.
ROWS = (
    # SIRT assigns an investigator, or records no further action.
    Stage(TRIAGE),
    # The investigator gathers evidence and concludes.
    Stage(INVESTIGATION, owner="party:investigator"),
    # A SIRT lead other than the investigator closes or reopens: the leads' queue, not
    # the investigator whose finding it is. Reassigning it names who investigates if it is
    # reopened (the review stays the leads'): an investigator, so SIRT's role.
    Stage(REVIEW, owner=QUEUE, queue="sirt_lead"),
)
STAGES = tuple(row.name for row in ROWS)

# Outcomes of a closed investigation: no further action, or the finding.
NO_FURTHER_ACTION = "no_further_action"
SUBSTANTIATED = "substantiated"
UNSUBSTANTIATED = "unsubstantiated"
INCONCLUSIVE = "inconclusive"
FINDINGS = (SUBSTANTIATED, UNSUBSTANTIATED, INCONCLUSIVE)

# Annex 1 and 4.1 name the kinds of abuse; 4.2 adds unauthorised recordings.
CATEGORIES = (
    "trolling",
    "cyberstalking",
    "cyberbullying",
    "harassment",
    "discrimination",
    "defamation",
    "unauthorised_recording",
)
SOURCES = ("staff_report", "routine_monitoring")  # 4.1, and 6.3's routine monitoring
EMPLOYEE = "employee"
PERPETRATOR_KINDS = (EMPLOYEE, "external", "unknown")

MAX_EXTENSIONS = 2
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

REASON = Field("reason")


@dataclass
class Conclusion:
    """The investigator's conclusion (`conclude`), which the review closes or reopens."""

    finding: str
    summary: str
    refer: bool
    criminal_consideration: bool = False


@dataclass
class InvestigationState(CaseState):
    """What an investigation carries beside every case's state."""

    conclusion: Conclusion | None = None
    extensions: int = 0
    evidence: int = 0  # items added, numbered in their events

    def adopt_legacy(self) -> None:
        super().adopt_legacy()
        concluded = self.extra.pop("conclusion", None)
        if concluded and self.conclusion is None:
            self.conclusion = Conclusion(
                concluded["finding"],
                concluded["summary"],
                concluded["refer"],
                bool(concluded.get("criminal_consideration")),
            )
        self.extensions = self.extensions or self.extra.pop("extensions", 0)
        self.evidence = self.evidence or self.extra.pop("evidence", 0)


@dataclass
class InvestigationInput(CaseInput):
    state: InvestigationState | None = None


PERPETRATOR = (
    Field("kind", "choice", choices=PERPETRATOR_KINDS),
    Field("email", "email", required=False),
    Field("description", required=False, max=2000),
)

RULES = CaseTypeRules(
    type=TYPE,
    prefix="ABU",
    team="sirt",
    rows=ROWS,
    workflow="AbuseInvestigationWorkflow",
    confidential=True,
    full_viewers=(
        "role:sirt",
        "role:sirt_lead",
        "party:investigator",
        "role:auditor",
        "role:admin",
    ),
    partial_viewers=("party:requester",),
    # Whoever the details name as perpetrator is a party: never escalated to, never told.
    detail_parties=(("perpetrator", "perpetrator.email"),),
    # Whatever their role (a perpetrator in SIRT), never more than a reporter's outline.
    parties_in_conflict=("perpetrator",),
    unassignable_lists=("targets",),
    details=(
        Field("category", "choice", choices=CATEGORIES, policy="4.1"),
        Field("platform", max=100),
        Field("description"),
        Field("occurred_on", "date"),
        Field("source", "choice", choices=SOURCES, policy="6.3"),
        Field("content_urls", "urls", max=2000),
        Field("targets", "emails"),
        Field("perpetrator", "object"),
    ),
    actions=(
        ActionRule(
            "assign",
            frozenset({TRIAGE}),
            ("role:sirt", "role:sirt_lead"),
            (Field("investigator", "email"),),
            label="Assign an investigator",
            policy="6.3",
            assigns=Assigns("investigator", INVESTIGATION),
        ),
        ActionRule(
            "no_further_action",
            frozenset({TRIAGE}),
            ("role:sirt", "role:sirt_lead"),
            (REASON,),
            label="No further action",
            irreversible=True,
        ),
        ActionRule(
            "add_evidence",
            frozenset({INVESTIGATION}),
            ("party:investigator",),
            (
                Field("description"),
                Field("url", "url", required=False, max=2000),
                Field("sha256", required=False, max=64),
                # Filled in by an upload (POST /api/cases/{id}/evidence).
                Field("size", "int", required=False, min=0),
                Field("media_type", required=False, max=200),
            ),
            label="Add evidence",
        ),
        # Found during the investigation: the perpetrator the report could not name (or
        # named wrongly). From then on they are the party in conflict.
        ActionRule(
            "identify_perpetrator",
            frozenset({INVESTIGATION}),
            ("party:investigator",),
            PERPETRATOR,
            label="Name the perpetrator",
            policy="6.2",
        ),
        ActionRule(
            "extend",
            frozenset({INVESTIGATION}),
            ("party:investigator",),
            (Field("by", "duration"), REASON),
            label="Extend",
        ),
        ActionRule(
            "conclude",
            frozenset({INVESTIGATION}),
            ("party:investigator",),
            (
                Field("finding", "choice", choices=FINDINGS),
                Field("summary"),
                Field("refer", "bool", policy="6.2"),
                Field("criminal_consideration", "bool", required=False, policy="6.2"),
            ),
            label="Conclude",
        ),
        # Four eyes: a SIRT lead other than whoever investigated or concluded.
        ActionRule(
            "close",
            frozenset({REVIEW}),
            ("role:sirt_lead",),
            not_party=("investigator", "concluded_by"),
            label="Close",
            irreversible=True,
        ),
        ActionRule(
            "reopen",
            frozenset({REVIEW}),
            ("role:sirt_lead",),
            (REASON,),
            not_party=("investigator", "concluded_by"),
            label="Reopen",
        ),
        *common_actions("sirt", frozenset(STAGES)),
    ),
)


def policy_sections(category: str) -> str:
    """The sections a referral for this abuse cites: 4.1 (4.2 for a recording), and 6.2."""
    return ("4.2" if category == "unauthorised_recording" else "4.1") + ", 6.2"


def intake_refusal(details: dict[str, Any], today: date) -> Refusal | None:
    """Why a report is refused before anything starts, if it is: a malformed perpetrator,
    an employee perpetrator not named by email, abuse that has not happened yet."""
    perpetrator = details.get("perpetrator")
    if not isinstance(perpetrator, dict):
        return Refusal(INVALID, "perpetrator: must be an object", "perpetrator")
    unknown = sorted(set(perpetrator) - {f.name for f in PERPETRATOR})
    if unknown:
        where = f"perpetrator.{unknown[0]}"
        return Refusal(INVALID, f"{where}: unknown field (kind, email, description)", where)
    try:
        cleaned = clean_fields(PERPETRATOR, perpetrator)
    except Refusal as r:
        return Refusal(r.code, f"perpetrator.{r.message}", f"perpetrator.{r.field}")
    missing = perpetrator_refusal(cleaned)
    if missing is not None:
        return Refusal(
            missing.code, f"perpetrator.{missing.message}", f"perpetrator.{missing.field}"
        )
    # `today` is the staff's date (the policy's time zone), not UTC's.
    if date.fromisoformat(details["occurred_on"]) > today:
        return Refusal(INVALID, "occurred_on: cannot be in the future", "occurred_on")
    return None


def perpetrator_refusal(cleaned: dict[str, Any]) -> Refusal | None:
    """Why a perpetrator (`PERPETRATOR`'s fields, cleaned) is refused, if it is: an
    employee must be named by email (6.2), at intake as when found later."""
    if cleaned["kind"] == EMPLOYEE and not cleaned.get("email"):
        return Refusal(
            INVALID, "email: required when the perpetrator is an employee (policy 6.2)", "email"
        )
    return None
