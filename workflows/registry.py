"""Every case type's rules by type name. Standard library only."""

from __future__ import annotations

from workflows import ipa_types
from workflows.rules import CaseTypeRules

CASE_TYPES: dict[str, CaseTypeRules] = {
    ipa_types.TYPE: ipa_types.RULES,
}

# Names of the workflow's update and query handlers, shared by every case type.
ACT_UPDATE = "act"
OPENED_UPDATE = "opened"
SNAPSHOT_QUERY = "snapshot"
# The signal a linked case sends the case that raised it, as it moves on.
LINKED_SIGNAL = "linked_case_changed"
