"""Retention of closed cases: the dry-run report, anonymising and purging, and an audit
trail that still verifies afterwards (by `casework audit verify` and by the standalone
export verifier), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from activities.records import RecordActivities
from app.cli.main import main
from app.platform.settings import DEFAULT_POLICY_FILE
from app.service import verify_export
from app.service.audit import verify
from app.service.exports import event_row
from domain.policy import Policy, PolicyError, parse_policy
from domain.retention import REDACTED, apply_retention, retention_due
from models import Case, CaseEvent, SentMail
from tests.domain.test_records import event, snapshot
from workflows.common import RecordRequest

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
SHIPPED = Path(DEFAULT_POLICY_FILE).read_text(encoding="utf-8")
RETENTION = """
[retention.abuse_investigation]
keep = "P2Y"
action = "anonymise"

[retention.ipa_approval]
keep = "P1Y"
action = "purge"
"""
ABU_OLD, ABU_RECENT, ABU_OPEN = "ABU-2027-000001", "ABU-2029-000001", "ABU-2027-000002"
IPA_OLD, PEX_OLD = "IPA-2028-000001", "PEX-2020-000001"


def policy(extra: str = RETENTION) -> Policy:
    return parse_policy(SHIPPED + extra)


def closed(case_id: str, case_type: str, closed_at: datetime | None) -> RecordRequest:
    opened = (closed_at or NOW) - timedelta(days=30)
    case = snapshot(
        id=case_id,
        type=case_type,
        status="closed" if closed_at else "open",
        stage="closed" if closed_at else "triage",
        outcome="substantiated" if closed_at else None,
        opened_at=opened,
        updated_at=closed_at or opened,
        closed_at=closed_at,
        requester="reporter@dwp.gov.uk",
        details={"description": "what the perpetrator posted", "platform": "X"},
        parties={"perpetrator": "someone@dwp.gov.uk", "requester": "reporter@dwp.gov.uk"},
    )
    events = [
        replace(event(f"{case_id}-{n}", n), at=opened + timedelta(minutes=n), actor="jo@dwp.gov.uk")
        for n in range(4)
    ]
    return RecordRequest(case=case, events=events)


@pytest.fixture
def recorded(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    acts = RecordActivities(sessions)
    for request in (
        closed(ABU_OLD, "abuse_investigation", NOW - timedelta(days=3 * 365)),
        closed(ABU_RECENT, "abuse_investigation", NOW - timedelta(days=365)),
        closed(ABU_OPEN, "abuse_investigation", None),
        closed(IPA_OLD, "ipa_approval", NOW - timedelta(days=2 * 365)),
        closed(PEX_OLD, "policy_exception", NOW - timedelta(days=10 * 365)),
    ):
        acts.record(request)
    with sessions.begin() as session:
        for case_id in (ABU_OLD, IPA_OLD):
            session.add(
                SentMail(
                    message_id=f"<{case_id}@casework>",
                    case_id=case_id,
                    kind="opened",
                    recipients="reporter@dwp.gov.uk",
                    subject=f"{case_id}: what the perpetrator posted",
                    status="sent",
                    sent_at=NOW - timedelta(days=1000),
                )
            )
    return sessions


def chain(sessions: sessionmaker[Session], case_id: str) -> list[CaseEvent]:
    with sessions() as session:
        query = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
        return list(session.scalars(query))


def case(sessions: sessionmaker[Session], case_id: str) -> Case:
    with sessions() as session:
        found = session.get(Case, case_id)
        assert found is not None
        return found


def audit_ok(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        result = verify(session)
    assert result.ok, result.first_problem
    return True


def test_the_report_lists_what_would_go_and_changes_nothing(
    recorded: sessionmaker[Session],
) -> None:
    before = {c: [e.hash for e in chain(recorded, c)] for c in (ABU_OLD, IPA_OLD)}
    with recorded() as session:
        due = retention_due(session, policy(), NOW)
    assert [(i.case_id, i.action, i.keep) for i in due] == [
        (ABU_OLD, "anonymise", "P2Y"),
        (IPA_OLD, "purge", "P1Y"),
    ]
    assert {c: [e.hash for e in chain(recorded, c)] for c in before} == before
    with recorded() as session:  # no rule for a type: every case of it is kept
        assert retention_due(session, policy(""), NOW) == []


def test_anonymising_blanks_the_case_and_keeps_a_chain_that_verifies(
    recorded: sessionmaker[Session],
) -> None:
    before = chain(recorded, ABU_OLD)
    exported_before = [event_row(e) for e in before]
    done = apply_retention(recorded, policy(), NOW)
    assert (done.anonymised, done.purged) == ([ABU_OLD], [IPA_OLD])

    row = case(recorded, ABU_OLD)
    assert (row.details, row.parties, row.requester) == ({}, {}, "")
    assert "perpetrator" not in row.search_text and ABU_OLD.lower() in row.search_text
    assert (row.type, row.status, row.outcome) == ("abuse_investigation", "closed", "substantiated")
    assert row.closed_at == NOW - timedelta(days=3 * 365)
    after = chain(recorded, ABU_OLD)
    assert [(e.seq, e.key, e.at, e.kind, e.hash, e.prev_hash) for e in after[:4]] == [
        (e.seq, e.key, e.at, e.kind, e.hash, e.prev_hash) for e in before
    ]
    assert all(e.data == {REDACTED: "anonymised"} and e.actor == "redacted" for e in after[:4])
    assert after[4].kind == "anonymised" and after[4].prev_hash == before[-1].hash
    assert after[4].data["events_redacted"] == 4
    with recorded() as session:
        mail = session.get(SentMail, f"<{ABU_OLD}@casework>")
        assert mail is not None and (mail.recipients, mail.subject) == ("", "")
    assert audit_ok(recorded)

    # A third party's export verifies, and its hashes are those of an export taken before.
    exported = [event_row(e) for e in after]
    report = verify_export.verify_events(json.loads(json.dumps(exported)))
    assert report.ok, report.problem
    assert [r["hash"] for r in exported[:4]] == [r["hash"] for r in exported_before]


def test_purging_leaves_a_tombstone_whose_one_event_names_the_old_head(
    recorded: sessionmaker[Session],
) -> None:
    before = chain(recorded, IPA_OLD)
    apply_retention(recorded, policy(), NOW)
    (purged,) = chain(recorded, IPA_OLD)
    assert (purged.seq, purged.kind, purged.prev_hash) == (1, "purged", "0" * 64)
    assert purged.data == {
        "rule": "retention.ipa_approval",
        "keep": "P1Y",
        "events_removed": 4,
        "head_seq": 4,
        "head_hash": before[-1].hash,
    }
    row = case(recorded, IPA_OLD)
    assert (row.details, row.requester, row.outcome) == ({}, "", "substantiated")
    with recorded() as session:
        assert session.scalars(select(SentMail).where(SentMail.case_id == IPA_OLD)).all() == []
    assert audit_ok(recorded)


def test_a_second_run_finds_nothing_to_do(recorded: sessionmaker[Session]) -> None:
    apply_retention(recorded, policy(), NOW)
    state = {c: [(e.hash, e.data) for e in chain(recorded, c)] for c in (ABU_OLD, IPA_OLD)}
    again = apply_retention(recorded, policy(), NOW + timedelta(days=1))
    assert (again.anonymised, again.purged) == ([], [])
    assert {c: [(e.hash, e.data) for e in chain(recorded, c)] for c in state} == state
    # A rule tightened from anonymise to purge still purges what was anonymised.
    stricter = policy(RETENTION.replace('action = "anonymise"', 'action = "purge"'))
    assert apply_retention(recorded, stricter, NOW).purged == [ABU_OLD]
    assert [e.kind for e in chain(recorded, ABU_OLD)] == ["purged"]
    assert audit_ok(recorded)


def test_a_redaction_no_anonymised_event_records_is_caught(
    recorded: sessionmaker[Session],
) -> None:
    with recorded.begin() as session:
        session.execute(
            update(CaseEvent)
            .where(CaseEvent.case_id == ABU_RECENT, CaseEvent.seq == 2)
            .values(data={REDACTED: "anonymised"}),
            execution_options={"synchronize_session": False},
        )
    with recorded() as session:
        problem = verify(session).first_problem
    assert problem == f"{ABU_RECENT} event 2: redacted, and no later anonymised event says so"
    rows = [event_row(e) for e in chain(recorded, ABU_RECENT)]
    report = verify_export.verify_events(json.loads(json.dumps(rows)))
    assert report.problem == problem


def test_an_edited_anonymised_record_is_caught(recorded: sessionmaker[Session]) -> None:
    apply_retention(recorded, policy(), NOW)
    with recorded.begin() as session:
        session.execute(
            update(CaseEvent)
            .where(CaseEvent.case_id == ABU_OLD, CaseEvent.kind == "anonymised")
            .values(data={"rule": "retention.abuse_investigation", "events_redacted": 0}),
            execution_options={"synchronize_session": False},
        )
    with recorded() as session:
        assert (
            verify(session).first_problem == f"{ABU_OLD} event 5: hash does not match its contents"
        )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            '[retention.abuse_investigation]\nkeep = "P2Y"\naction = "shred"\n',
            "retention.abuse_investigation.action: 'shred' is not one of anonymise, purge",
        ),
        (
            '[retention.abuse_investigation]\nkeep = "5wd"\naction = "purge"\n',
            "retention.abuse_investigation.keep: '5wd' must be ISO-8601",
        ),
        (
            '[retention.abuse_investigation]\nkeep = "two years"\naction = "purge"\n',
            "retention.abuse_investigation.keep: 'two years' is not a duration",
        ),
        (
            '[retention.abuse_investigation]\naction = "purge"\n',
            "retention.abuse_investigation.keep: missing",
        ),
        (
            '[retention.abuse_investigation]\nkeep = "P2Y"\naction = "purge"\nwhen = "now"\n',
            "retention.abuse_investigation.when: unknown key",
        ),
        (
            '[retention.parking_fine]\nkeep = "P2Y"\naction = "purge"\n',
            "retention.parking_fine: unknown case type",
        ),
    ],
)
def test_a_malformed_retention_section_names_the_key(section: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        policy("\n" + section)
    assert str(info.value).startswith(message)


def test_the_report_command(
    recorded: sessionmaker[Session],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    file = tmp_path / "policy.toml"
    file.write_text(SHIPPED + RETENTION, encoding="utf-8")
    monkeypatch.setenv("CASEWORK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CASEWORK_DATABASE_URL", db_url)
    monkeypatch.setenv("CASEWORK_POLICY_FILE", str(file))
    assert main(["retention", "report"]) == 0
    out = capsys.readouterr().out.splitlines()
    # Judged against today: everything recorded here closed "in 2027-2029", so nothing yet.
    assert out == [
        "would anonymise 0, purge 0 (retention: abuse_investigation P2Y then anonymise, "
        "ipa_approval P1Y then purge)"
    ]
    with recorded.begin() as session:  # ... until a case closed long enough ago
        session.execute(
            update(Case).where(Case.id == PEX_OLD).values(type="ipa_approval"),
            execution_options={"synchronize_session": False},
        )
    assert main(["retention", "report"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{PEX_OLD} ipa_approval substantiated closed 2020-")
    assert out[0].endswith(": purge")
    assert out[1].startswith("would anonymise 0, purge 1")
    assert case(recorded, PEX_OLD).details != {}  # a report only
