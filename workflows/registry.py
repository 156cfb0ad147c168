"""Every case type's rules by type name. Standard library only."""

from __future__ import annotations

from workflows import exception_types, investigation_types, ipa_types, referral_types
from workflows.rules import CaseTypeRules

CASE_TYPES: dict[str, CaseTypeRules] = {
    ipa_types.TYPE: ipa_types.RULES,
    referral_types.TYPE: referral_types.RULES,
    investigation_types.TYPE: investigation_types.RULES,
    exception_types.TYPE: exception_types.RULES,
}

# Names of the workflow's update and query handlers, shared by every case type.
ACT_UPDATE = "act"
OPENED_UPDATE = "opened"
SNAPSHOT_QUERY = "snapshot"
# The signal a linked case sends the case that raised it, as it moves on.
LINKED_SIGNAL = "linked_case_changed"
# The signal that asks a case to tell one more case as it moves on (an IPA naming an
# exception approved before it): a `Link` to the asking case, with its relation.
FOLLOW_SIGNAL = "follow_case"
# A new policy file reaches an open case: re-plan its clock (update), or preview (query).
POLICY_UPDATE = "policy_changed"
POLICY_PREVIEW_QUERY = "policy_preview"
# A person has left the directory: their open work on the case moves on (`workflows.leavers`).
PERSON_LEFT_UPDATE = "person_left"

# The activities a case workflow calls, by name (the worker registers them under these).
RECORD_ACTIVITY = "record"  # events and the case row, in one transaction
SEND_MAIL_ACTIVITY = "send_mail"
TEAM_MEMBERS_ACTIVITY = "team_members"
ESCALATION_TARGET_ACTIVITY = "escalation_target"
OFFSETS_ACTIVITY = "offsets"  # working days, on the policy's calendar (a local activity)
PREPARE_LINKED_CASE_ACTIVITY = "prepare_linked_case"
READ_CASE_ACTIVITY = "read_case"
