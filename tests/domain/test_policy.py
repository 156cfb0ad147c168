import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.platform.settings import DEFAULT_POLICY_FILE
from domain.policy import REQUIRED_STAGES, Policy, PolicyError, load_policy, parse_policy
from workflows.common import CasePolicy, StageDurations

START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # a Tuesday

# --- the shipped file ---


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy(DEFAULT_POLICY_FILE)


def test_shipped_policy_covers_every_required_stage(shipped: Policy) -> None:
    assert {t: tuple(s) for t, s in shipped.stages.items()} == REQUIRED_STAGES
    assert set(REQUIRED_STAGES) == {
        "ipa_approval",
        "policy_exception",
        "abuse_investigation",
        "disciplinary_referral",
    }
    assert shipped.bank_holidays == "GB-ENG"
    assert shipped.version == hashlib.sha256(DEFAULT_POLICY_FILE.read_bytes()).hexdigest()


def test_shipped_policy_values(shipped: Policy) -> None:
    ipa = shipped.stages["ipa_approval"]
    assert ipa["manager_endorsement"] == StageDurations(
        sla="3wd", remind="2wd", escalate_every="2wd"
    )
    assert ipa["active"].extra == {"attest_every": "P1Y"}
    assert ipa["awaiting_info"].extra["lapse"] == "10wd"
    assert shipped.stages["policy_exception"]["active"].extra == {"expiry_notice": "10wd"}
    assert shipped.stages["policy_exception"]["awaiting_info"].extra["lapse"] == "10wd"
    assert shipped.stages["disciplinary_referral"]["appeal_window"].sla == "5wd"
    assert shipped.stages["abuse_investigation"]["investigation"].sla == "20wd"


def test_shipped_policy_durations_are_usable(shipped: Policy) -> None:
    # Every duration works on the calendar, and every reminder comes before its deadline.
    for case_type, stages in shipped.stages.items():
        for stage, d in stages.items():
            deadline = d.sla if stage != "awaiting_info" else d.extra["lapse"]
            assert deadline is not None, (case_type, stage)
            due = shipped.calendar.add(START, deadline)
            assert due > START
            if d.remind is not None:
                assert START < shipped.calendar.add(START, d.remind) < due
            if d.escalate_every is not None:
                assert shipped.calendar.add(START, d.escalate_every) > START


def test_for_case_is_a_copy(shipped: Policy) -> None:
    case_policy = shipped.for_case("ipa_approval")
    assert isinstance(case_policy, CasePolicy)
    assert case_policy.version == shipped.version
    assert case_policy.bank_holidays == "GB-ENG"
    assert list(case_policy.stages) == list(REQUIRED_STAGES["ipa_approval"])
    assert case_policy.stages["active"].extra == {"attest_every": "P1Y"}
    case_policy.stages["active"].extra["attest_every"] = "P2Y"
    case_policy.stages["sac_review"].sla = "99wd"
    assert shipped.stages["ipa_approval"]["active"].extra == {"attest_every": "P1Y"}
    assert shipped.stages["ipa_approval"]["sac_review"].sla == "5wd"
    with pytest.raises(KeyError, match="no policy for case type 'nope'"):
        shipped.for_case("nope")


# --- a minimal valid file, to break one thing at a time ---


def valid_sections() -> dict[str, dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {"calendar": {"bank_holidays": "GB-ENG"}}
    for case_type, stages in REQUIRED_STAGES.items():
        for stage in stages:
            sections[f"sla.{case_type}.{stage}"] = {"sla": "5wd", "remind": "3wd"}
    for case_type in ("ipa_approval", "policy_exception"):
        sections[f"sla.{case_type}.awaiting_info"] = {"remind": "5wd", "lapse": "10wd"}
    sections["sla.ipa_approval.active"]["attest_every"] = "P1Y"
    sections["sla.policy_exception.active"]["expiry_notice"] = "10wd"
    return sections


def render(sections: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
        lines.append("")
    return "\n".join(lines)


def parse_with(change: Any) -> Policy:
    sections = valid_sections()
    change(sections)
    return parse_policy(render(sections))


def test_the_minimal_file_is_valid() -> None:
    policy = parse_policy(render(valid_sections()))
    assert policy.stages["policy_exception"]["triage"] == StageDurations(sla="5wd", remind="3wd")
    assert policy.stages["ipa_approval"]["awaiting_info"] == StageDurations(
        remind="5wd", extra={"lapse": "10wd"}
    )


def test_version_is_the_sha256_of_the_bytes() -> None:
    text = render(valid_sections())
    assert parse_policy(text).version == hashlib.sha256(text.encode()).hexdigest()
    assert parse_policy(text.encode()).version == parse_policy(text).version
    assert parse_policy("# edited\n" + text).version != parse_policy(text).version


def test_calendar_section_defaults_to_england_and_wales() -> None:
    assert parse_with(lambda s: s.pop("calendar")).bank_holidays == "GB-ENG"


@pytest.mark.parametrize("region", ["GB-ENG", "GB-WLS", "GB-SCT", "GB-NIR"])
def test_supported_regions(region: str) -> None:
    policy = parse_with(lambda s: s["calendar"].update(bank_holidays=region))
    assert policy.bank_holidays == region
    assert policy.for_case("abuse_investigation").bank_holidays == region


def test_optional_keys() -> None:
    def change(s: dict[str, dict[str, Any]]) -> None:
        s["sla.abuse_investigation.triage"] = {"sla": "PT30S"}  # remind optional
        s["sla.ipa_approval.awaiting_info"]["sla"] = "20wd"  # sla allowed in awaiting_info
        s["sla.ipa_approval.awaiting_info"]["escalate_every"] = "2wd"
        s["sla.abuse_investigation.review"] = {"sla": "5wd", "remind": "PT1H"}  # not comparable

    policy = parse_with(change)
    assert policy.stages["abuse_investigation"]["triage"] == StageDurations(sla="PT30S")
    assert policy.stages["ipa_approval"]["awaiting_info"].sla == "20wd"


def test_syntax_error_names_the_line() -> None:
    text = render(valid_sections()).replace('sla = "5wd"', 'sla = "5wd', 1)
    line = text.splitlines().index('sla = "5wd') + 1
    with pytest.raises(PolicyError, match=rf"not valid TOML: .*line {line}\b"):
        parse_policy(text)


def test_not_utf8() -> None:
    with pytest.raises(PolicyError, match="not UTF-8"):
        parse_policy(b'[calendar]\nbank_holidays = "\xff"\n')


def sla_not_a_duration(s: dict[str, dict[str, Any]]) -> None:
    s["sla.ipa_approval.sac_review"]["sla"] = "five days"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            sla_not_a_duration,
            "sla.ipa_approval.sac_review.sla: 'five days' is not a duration "
            '("5wd", or ISO-8601 such as "P14D")',
        ),
        (
            lambda s: s["sla.abuse_investigation.review"].update(remind=3),
            "sla.abuse_investigation.review.remind: expected a duration string, got int",
        ),
        (
            lambda s: s["sla.ipa_approval.active"].update(attest_every="1 year"),
            "sla.ipa_approval.active.attest_every: '1 year' is not a duration",
        ),
        (
            lambda s: s["sla.policy_exception.triage"].update(escalate_every="0wd"),
            "sla.policy_exception.triage.escalate_every: '0wd' must be longer than zero",
        ),
        (
            lambda s: s["sla.policy_exception.triage"].update(sla="PT0S"),
            "sla.policy_exception.triage.sla: 'PT0S' must be longer than zero",
        ),
        (
            lambda s: s.pop("sla.ipa_approval.sac_review"),
            "sla.ipa_approval.sac_review: missing section",
        ),
        (
            lambda s: [s.pop(k) for k in list(s) if k.startswith("sla.disciplinary_referral.")],
            "sla.disciplinary_referral: missing section",
        ),
        (
            lambda s: [s.pop(k) for k in list(s) if k.startswith("sla.")],
            "sla: missing section",
        ),
        (
            lambda s: s.update({"sla.ipa_renewal.review": {"sla": "5wd"}}),
            "sla.ipa_renewal: unknown case type (expected one of: ipa_approval,",
        ),
        (
            lambda s: s.update({"sla.abuse_investigation.appeal": {"sla": "5wd"}}),
            "sla.abuse_investigation.appeal: unknown stage of abuse_investigation "
            "(expected one of: triage, investigation, review)",
        ),
        (
            lambda s: s["sla.ipa_approval.sac_review"].update(remnd="2wd"),
            "sla.ipa_approval.sac_review.remnd: unknown key "
            "(expected one of: sla, remind, escalate_every)",
        ),
        (
            lambda s: s["sla.ipa_approval.sac_review"].update(lapse="2wd"),
            "sla.ipa_approval.sac_review.lapse: unknown key",
        ),
        (
            lambda s: s["sla.policy_exception.active"].update(attest_every="P1Y"),
            "sla.policy_exception.active.attest_every: unknown key",
        ),
        (
            lambda s: s.update({"slas.ipa_approval.triage": {"sla": "5wd"}}),
            "slas: unknown section (expected one of: calendar, sla, retention)",
        ),
        (
            lambda s: s["calendar"].update(time_zone="Europe/London"),
            "calendar.time_zone: unknown key (expected one of: bank_holidays, extra_holidays, "
            "timezone, working_day_ends)",
        ),
        (
            lambda s: s["calendar"].update(timezone="London"),
            "calendar.timezone: 'London' is not a known time zone, e.g. 'Europe/London'",
        ),
        (
            lambda s: s["calendar"].update(timezone=1),
            "calendar.timezone: 1 is not a time zone name",
        ),
        (
            lambda s: s["calendar"].update(working_day_ends="5pm"),
            "calendar.working_day_ends: '5pm' is not a time of day as HH:MM",
        ),
        (
            lambda s: s["sla.ipa_approval.sac_review"].pop("sla"),
            "sla.ipa_approval.sac_review.sla: missing (required in this section)",
        ),
        (
            lambda s: s["sla.policy_exception.awaiting_info"].pop("lapse"),
            "sla.policy_exception.awaiting_info.lapse: missing",
        ),
        (
            lambda s: s["sla.ipa_approval.awaiting_info"].pop("remind"),
            "sla.ipa_approval.awaiting_info.remind: missing",
        ),
        (
            lambda s: s["sla.ipa_approval.active"].pop("attest_every"),
            "sla.ipa_approval.active.attest_every: missing",
        ),
        (
            lambda s: s["sla.policy_exception.active"].pop("expiry_notice"),
            "sla.policy_exception.active.expiry_notice: missing",
        ),
        (
            lambda s: s["sla.disciplinary_referral.hearing"].update(remind="5wd"),
            "sla.disciplinary_referral.hearing.remind: '5wd' must be shorter than sla '5wd'",
        ),
        (
            lambda s: s["sla.disciplinary_referral.hearing"].update(sla="P2D", remind="P3D"),
            "sla.disciplinary_referral.hearing.remind: 'P3D' must be shorter than sla 'P2D'",
        ),
        (
            lambda s: s["sla.disciplinary_referral.hearing"].update(sla="P1M", remind="P31D"),
            "sla.disciplinary_referral.hearing.remind: 'P31D' must be shorter than sla 'P1M'",
        ),
        (
            lambda s: s["sla.ipa_approval.awaiting_info"].update(remind="12wd"),
            "sla.ipa_approval.awaiting_info.remind: '12wd' must be shorter than lapse '10wd'",
        ),
        (
            lambda s: s["calendar"].update(bank_holidays="GB-XYZ"),
            "calendar.bank_holidays: 'GB-XYZ' is not a supported bank-holiday region "
            "(GB-ENG, GB-NIR, GB-SCT, GB-WLS)",
        ),
        (
            lambda s: s["calendar"].update(bank_holidays=["GB-ENG"]),
            "calendar.bank_holidays: ['GB-ENG'] is not a supported bank-holiday region",
        ),
    ],
)
def test_malformed_file_names_the_key(change: Any, message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_with(change)
    assert str(raised.value).startswith(message)


def test_a_stage_given_as_a_value_not_a_section() -> None:
    text = render(valid_sections()).replace(
        "[sla.ipa_approval.active]",
        '[sla.ipa_approval]\nsac_review = "5wd"\n[sla.ipa_approval.active]',
    )
    text = text.replace('[sla.ipa_approval.sac_review]\nsla = "5wd"\nremind = "3wd"\n', "")
    with pytest.raises(PolicyError, match=r"^sla\.ipa_approval\.sac_review: must be a section"):
        parse_policy(text)


def test_load_policy_prefixes_the_path(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    sections = valid_sections()
    sla_not_a_duration(sections)
    path.write_text(render(sections))
    with pytest.raises(PolicyError, match=rf"^{path}: sla\.ipa_approval\.sac_review\.sla: "):
        load_policy(path)
    with pytest.raises(PolicyError, match=rf"^{tmp_path / 'missing.toml'}: cannot read"):
        load_policy(tmp_path / "missing.toml")
