"""Disciplinary referral (policy 6.2, 6.4): the one table of its stages, actions and
actors, its details and its intake rules.

Confidential: seen whole by hr, hr_lead, the caseworker, auditors and admins; the
subject sees only the case's outline; anyone else gets 404.

Standard library only: the workflow, the service layer, the pages and the tests
all read this module.
"""

# No `from __future__ import annotations`: the state dataclasses below cross the Temporal
# boundary, and the data converter evaluates string annotations on every decode.
from dataclasses import dataclass
from typing import Any

from workflows.common import Actor, CaseInput, CaseState
from workflows.rules import (
    FORBIDDEN,
    QUEUE,
    ActionRule,
    Assigns,
    CaseTypeRules,
    Field,
    Refusal,
    Stage,
    common_actions,
)

TYPE = "disciplinary_referral"

HR_REVIEW = "hr_review"
HEARING = "hearing"
APPEAL_WINDOW = "appeal_window"
APPEAL = "appeal"

# The process, stage by stage. The appeal window waits on the subject, who is never
# mailed (a conflict of interest): nobody is chased, and when it ends the case closes by
# itself with the outcome recorded at the hearing.
ROWS = (
    # HR accepts it (naming a caseworker) or finds no case to answer.
    Stage(HR_REVIEW),
    # The caseworker holds the hearing and records its outcome.
    Stage(HEARING, owner="party:caseworker"),
    Stage(APPEAL_WINDOW, owner="party:subject", when_due="close_the_appeal_window"),
    # An HR lead decides the appeal: the leads' queue, not the caseworker who heard it.
    Stage(APPEAL, owner=QUEUE, queue="hr_lead", assignee_role="hr_lead"),
)
STAGES = tuple(row.name for row in ROWS)

# Outcomes of a hearing (`record_outcome`), and so of a closed referral.
NO_ACTION = "no_action"
FIRST_WRITTEN_WARNING = "first_written_warning"
FINAL_WRITTEN_WARNING = "final_written_warning"
DISMISSAL = "dismissal"
HEARING_OUTCOMES = (NO_ACTION, FIRST_WRITTEN_WARNING, FINAL_WRITTEN_WARNING, DISMISSAL)

# Other outcomes of a closed referral.
NO_CASE_TO_ANSWER = "no_case_to_answer"
OVERTURNED = "overturned"

# Who may open a referral directly: HR runs referrals (DESIGN). An investigation
# raises its own, as a linked case, without asking anyone.
OPENED_BY = frozenset({"hr", "hr_lead"})

REASON = Field("reason")


@dataclass
class ReferralState(CaseState):
    """What a referral carries beside every case's state."""

    # The hearing's outcome while it may be appealed: final when the window ends or the
    # appeal fails.
    recorded_outcome: str | None = None

    def adopt_legacy(self) -> None:
        super().adopt_legacy()
        self.recorded_outcome = self.recorded_outcome or self.extra.pop("recorded_outcome", None)


@dataclass
class ReferralInput(CaseInput):
    state: ReferralState | None = None


RULES = CaseTypeRules(
    type=TYPE,
    prefix="DIS",
    team="hr",
    rows=ROWS,
    workflow="DisciplinaryReferralWorkflow",
    confidential=True,
    full_viewers=("role:hr", "role:hr_lead", "party:caseworker", "role:auditor", "role:admin"),
    partial_viewers=("party:subject",),
    detail_parties=(("subject", "subject"),),
    # The subject takes no action on their own referral but `appeal` (`party:subject`),
    # and sees only its outline, whatever roles they hold (HR included).
    parties_in_conflict=("subject",),
    details=(
        Field("subject", "email", policy="6.2"),
        Field("breach"),
        Field("policy_sections", max=200),
        Field("source_case", required=False, max=40),
        Field("criminal_consideration", "bool", policy="6.2"),
    ),
    actions=(
        ActionRule(
            "accept",
            frozenset({HR_REVIEW}),
            ("role:hr", "role:hr_lead"),
            (Field("caseworker", "email"),),
            label="Accept",
            assigns=Assigns("caseworker", HEARING),
        ),
        ActionRule(
            "no_case_to_answer",
            frozenset({HR_REVIEW}),
            ("role:hr", "role:hr_lead"),
            (REASON,),
            label="No case to answer",
            irreversible=True,
        ),
        ActionRule(
            "schedule_hearing",
            frozenset({HEARING}),
            ("party:caseworker",),
            (Field("on", "date"),),
            label="Schedule the hearing",
        ),
        ActionRule(
            "record_outcome",
            frozenset({HEARING}),
            ("party:caseworker",),
            (Field("outcome", "choice", choices=HEARING_OUTCOMES, policy="6.2"), REASON),
            label="Record the outcome",
            policy="6.2",
            irreversible=True,
        ),
        ActionRule(
            "appeal",
            frozenset({APPEAL_WINDOW}),
            ("party:subject",),
            (Field("grounds"),),
            label="Appeal",
        ),
        ActionRule(
            "decide_appeal",
            frozenset({APPEAL}),
            ("role:hr_lead",),
            (Field("upheld", "bool"), REASON),
            # Not decided by whoever heard the case.
            not_party=("caseworker",),
            label="Decide the appeal",
            irreversible=True,
        ),
        *common_actions("hr", frozenset(STAGES)),
    ),
)


def opener_refusal(actor: Actor, details: dict[str, Any]) -> Refusal | None:
    """Why `actor` may not open this referral directly, if they may not (403)."""
    if not OPENED_BY & set(actor.roles):
        return Refusal(
            FORBIDDEN,
            f"actor: only HR may refer someone for disciplinary action, not {actor.email}",
        )
    subject = details.get("subject")
    if isinstance(subject, str) and subject.strip().lower() == actor.email.lower():
        return Refusal(
            FORBIDDEN, "details.subject: nobody may open a referral about themselves", "subject"
        )
    return None
