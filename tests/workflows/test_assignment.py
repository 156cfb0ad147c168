"""Who a case may be given to (API.md: "a person in the directory holding the role the
stage needs and not a party to the case"), refused by the workflow's own validator on
the time-skipping server, whatever the caller: the service looks the person up and
passes them in the request (`ActionRequest.assignee`); a caller that does not, or names
someone else, is refused as if the person were not in the directory."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflows import exception_helpers as pexh
from tests.workflows import investigation_helpers as abuh
from tests.workflows import ipa_helpers as ipah
from tests.workflows import referral_helpers as dish
from tests.workflows.helpers import (
    act,
    load_people,
    refusal,
    refused_changing_nothing,
    shipped_policy,
    start,
)
from workflows import exception_types as pex
from workflows import investigation_types as abu
from workflows import ipa_types as ipa
from workflows import referral_types as dis
from workflows.common import ActionRequest, Actor
from workflows.registry import ACT_UPDATE


def test_each_stage_names_the_role_its_assignee_needs() -> None:
    """The table's rows: a team's stage needs the team's role, a lead's decision the lead's."""
    assert ipa.RULES.role_for(ipa.SAC_REVIEW) == "sac"
    assert ipa.RULES.role_for(ipa.MANAGER_ENDORSEMENT) == "sac"
    assert pex.RULES.role_for(pex.DECISION) == "sac_lead"
    assert abu.RULES.role_for(abu.INVESTIGATION) == "sirt"
    # Reassigning a review names the investigator of a reopened case (the leads decide).
    assert abu.RULES.role_for(abu.REVIEW) == "sirt"
    assert dis.RULES.role_for(dis.HEARING) == "hr"
    assert dis.RULES.role_for(dis.APPEAL) == "hr_lead"
    # `assign` and `accept` hand over the next stage's work: its row decides.
    assign = abu.RULES.action("assign").assigns
    accept = dis.RULES.action("accept").assigns
    assert assign is not None and (assign.field, assign.stage) == (
        "investigator",
        abu.INVESTIGATION,
    )
    assert accept is not None and (accept.field, accept.stage) == ("caseworker", dis.HEARING)


async def test_an_ipa_is_reassigned_only_to_someone_in_sac(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    ipah.load_people(engine)
    client = time_skipping_env.client
    handle, _ = await start(client, worker.task_queue, ipah.new_case(shipped_policy()))
    await act(handle, ipah.MANAGER, "endorse")
    outsider = await refused_changing_nothing(
        engine, handle, ipah.SAC_LEAD, "reassign", assignee="nobody@example.com"
    )
    assert (outsider.type, outsider.message) == (
        "invalid",
        "assignee: nobody@example.com is not in the directory",
    )
    no_role = await refused_changing_nothing(
        engine, handle, ipah.SAC_LEAD, "reassign", assignee=ipah.MANAGER.email
    )
    assert no_role.message == (
        f"assignee: {ipah.MANAGER.email} does not hold the role sac this stage needs"
    )
    after = await act(handle, ipah.SAC_LEAD, "reassign", assignee=ipah.OFFICER.email)
    assert (after.assignee, after.owner) == (ipah.OFFICER.email, ipah.OFFICER.email)


async def test_the_validator_trusts_only_the_person_the_request_carries(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    """A request that names a SAC officer but carries nobody, or someone else with the
    role, is refused: the validator checks the person it was given, not a name."""
    ipah.load_people(engine)
    handle, _ = await start(
        time_skipping_env.client, worker.task_queue, ipah.new_case(shipped_policy())
    )
    for carried in (None, ipah.SAC_LEAD):
        request = ActionRequest(
            "reassign", ipah.SAC_LEAD, {"assignee": ipah.OFFICER.email}, assignee=carried
        )
        error = await refusal(handle.execute_update(ACT_UPDATE, request))
        assert error.message == f"assignee: {ipah.OFFICER.email} is not in the directory"


async def test_a_lead_only_decision_is_reassigned_only_to_a_lead(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    pexh.load_people(engine)
    handle, _ = await start(
        time_skipping_env.client, worker.task_queue, pexh.new_exception(shipped_policy())
    )
    await pexh.to_decision(handle)
    error = await refused_changing_nothing(
        engine, handle, pexh.SAC_LEAD, "reassign", assignee=pexh.OFFICER.email
    )
    assert error.message == (
        f"assignee: {pexh.OFFICER.email} does not hold the role sac_lead this stage needs"
    )
    after = await act(handle, pexh.SAC_LEAD, "reassign", assignee=pexh.SAC_LEAD2.email)
    assert after.assignee == pexh.SAC_LEAD2.email


async def test_an_investigator_holds_sirt_and_is_not_the_perpetrator(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    abuh.load_people(engine)
    # The alleged perpetrator is a SIRT investigator themselves.
    inp = abuh.new_investigation(
        shipped_policy(),
        perpetrator={"kind": "employee", "email": abuh.INVESTIGATOR2.email},
    )
    handle, _ = await start(time_skipping_env.client, worker.task_queue, inp)
    hr = await refused_changing_nothing(
        engine, handle, abuh.SIRT_LEAD, "assign", investigator=abuh.HR.email
    )
    assert (
        hr.message == f"investigator: {abuh.HR.email} does not hold the role sirt this stage needs"
    )
    party = await refused_changing_nothing(
        engine, handle, abuh.SIRT_LEAD, "assign", investigator=abuh.INVESTIGATOR2.email
    )
    assert party.message == (
        f"investigator: {abuh.INVESTIGATOR2.email} is the perpetrator of {inp.case.id}, a party"
        " to it"
    )
    outsider = await refused_changing_nothing(
        engine, handle, abuh.SIRT_LEAD, "assign", investigator="outsider@example.com"
    )
    assert outsider.message == "investigator: outsider@example.com is not in the directory"
    after = await act(handle, abuh.SIRT_LEAD, "assign", investigator=abuh.INVESTIGATOR.email)
    assert (after.stage, after.assignee) == (abu.INVESTIGATION, abuh.INVESTIGATOR.email)
    # Reassigning the investigation: the same rule.
    error = await refused_changing_nothing(
        engine, handle, abuh.SIRT_LEAD, "reassign", assignee=abuh.HR.email
    )
    assert error.type == "invalid"


async def test_a_target_of_the_abuse_is_never_its_investigator(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    abuh.load_people(engine)
    inp = abuh.new_investigation(shipped_policy(), targets=[abuh.INVESTIGATOR2.email])
    handle, _ = await start(time_skipping_env.client, worker.task_queue, inp)
    target = await refused_changing_nothing(
        engine, handle, abuh.SIRT_LEAD, "assign", investigator=abuh.INVESTIGATOR2.email
    )
    assert target.message == (
        f"investigator: {abuh.INVESTIGATOR2.email} is among the targets of {inp.case.id},"
        " a party to it"
    )
    await act(handle, abuh.SIRT_LEAD, "assign", investigator=abuh.INVESTIGATOR.email)
    again = await refused_changing_nothing(
        engine, handle, abuh.SIRT_LEAD, "reassign", assignee=abuh.INVESTIGATOR2.email
    )
    assert again.type == "invalid" and "among the targets" in again.message


@pytest.mark.parametrize(
    ("caseworker", "reason"),
    [
        ("nobody@example.com", "is not in the directory"),
        (dish.OUTSIDER.email, "does not hold the role hr this stage needs"),
    ],
)
async def test_a_caseworker_holds_hr(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    caseworker: str,
    reason: str,
) -> None:
    dish.load_people(engine)
    handle, _ = await start(
        time_skipping_env.client, worker.task_queue, dish.new_referral(shipped_policy())
    )
    error = await refused_changing_nothing(engine, handle, dish.HR, "accept", caseworker=caseworker)
    assert error.message == f"caseworker: {caseworker} {reason}"


async def test_the_subject_in_hr_may_not_hear_their_own_referral(
    time_skipping_env: WorkflowEnvironment, worker: Worker, engine: Engine
) -> None:
    dish.load_people(engine)
    hr_subject = Actor("hrsubject@dwp.gov.uk", ["hr"], "HR Subject")
    load_people(
        engine,
        "email,name,manager_email,roles\nhrsubject@dwp.gov.uk,HR Subject,hrlead@dwp.gov.uk,hr\n",
    )
    inp = dish.new_referral(shipped_policy(), details={**dish.DETAILS, "subject": hr_subject.email})
    handle, _ = await start(time_skipping_env.client, worker.task_queue, inp)
    error = await refused_changing_nothing(
        engine, handle, dish.HR, "accept", caseworker=hr_subject.email
    )
    assert error.message == (
        f"caseworker: {hr_subject.email} is the subject of {inp.case.id}, a party to it"
    )
