"""The engine reads each case type's table: a row or an action no method carries out is a
mistake found when the workflow class is defined, not when a case reaches it; and state
that older runs kept untyped is read into the typed fields."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from workflows import exception_types as pex
from workflows import investigation_types as abu
from workflows import ipa_types as ipa
from workflows import referral_types as dis
from workflows.common import CaseSnapshot
from workflows.engine import Act, CaseWorkflow, action
from workflows.registry import CASE_TYPES
from workflows.rules import Stage

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def snapshot(case_type: str) -> CaseSnapshot:
    return CaseSnapshot("X-1", case_type, "open", "s", "r@dwp.gov.uk", NOW, NOW)


def test_an_action_without_a_method_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match="handles nothing for: endorse, decline, approve"):

        class Forgetful(CaseWorkflow[ipa.IpaState]):  # defines no action at all
            RULES = ipa.RULES


def test_an_ending_without_a_method_is_refused_too() -> None:
    rows = (*ipa.ROWS[:-1], Stage(ipa.ACTIVE, when_due="vanish"))
    rules = replace(ipa.RULES, rows=rows, actions=ipa.RULES.actions[:0])
    with pytest.raises(TypeError, match="handles nothing for: vanish"):

        class Vanishing(CaseWorkflow[ipa.IpaState]):
            RULES = rules


def test_every_case_type_table_names_a_row_per_stage_and_a_queue_or_owner() -> None:
    for rules in CASE_TYPES.values():
        assert [row.name for row in rules.rows] == list(rules.stages)
        for row in rules.rows:
            assert row.owner in ("assignee", "queue") or row.party, (rules.type, row)


def test_a_method_is_found_by_the_action_it_is_marked_for() -> None:
    class Handled(CaseWorkflow[ipa.IpaState]):
        RULES = replace(ipa.RULES, actions=ipa.RULES.actions[:1])  # endorse only

        @action("endorse")
        async def endorse_it(self, act: Act) -> None:
            pass

    assert Handled._handlers["endorse"] == "endorse_it"
    assert Handled._handlers["comment"] == "comment"  # every type's, from the engine


def test_state_kept_untyped_by_older_runs_is_read_into_its_fields() -> None:
    state = ipa.IpaState(
        case=snapshot(ipa.TYPE),
        extra={
            "exception_case": "PEX-2026-000001",
            "last_attested_at": NOW.isoformat(),
            "follower": "IPA-2026-000009",
            "told": "open:active",
            "followers": {"IPA-2026-000010": ""},
        },
    )
    state.adopt_legacy()
    assert (state.exception_case, state.last_attested_at) == ("PEX-2026-000001", NOW)
    assert (state.follower, state.told, state.followers) == (
        "IPA-2026-000009",
        "open:active",
        {"IPA-2026-000010": ""},
    )
    assert state.extra == {}

    pex_state = pex.ExceptionState(
        case=snapshot(pex.TYPE),
        extra={"approved_at": NOW.isoformat(), "expires_at": NOW.isoformat(), "extensions": 1},
    )
    pex_state.adopt_legacy()
    assert (pex_state.approved_at, pex_state.expires_at, pex_state.extensions) == (NOW, NOW, 1)

    abu_state = abu.InvestigationState(
        case=snapshot(abu.TYPE),
        extra={
            "conclusion": {"finding": "substantiated", "summary": "Seen", "refer": True},
            "extensions": 2,
            "evidence": 3,
        },
    )
    abu_state.adopt_legacy()
    assert abu_state.conclusion == abu.Conclusion("substantiated", "Seen", True, False)
    assert (abu_state.extensions, abu_state.evidence) == (2, 3)

    dis_state = dis.ReferralState(case=snapshot(dis.TYPE), extra={"recorded_outcome": "dismissal"})
    dis_state.adopt_legacy()
    assert dis_state.recorded_outcome == "dismissal" and dis_state.extra == {}
