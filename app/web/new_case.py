"""New case forms (`/cases/new`, `/cases/new/{type}`): one per case type, from its details
table, each rule shown with the policy section it comes from; refusals beside the field."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from app import service
from app.service.errors import NotFound, ServiceError
from app.web.fields import all_names, from_form, placed, widgets
from app.web.forms import Form, posted_form
from app.web.render import render
from app.web.resume import take_typed
from app.web.session import flash, services_of, signed_in
from domain import text
from workflows.common import Actor
from workflows.registry import CASE_TYPES

router = APIRouter()
Me = Annotated[Actor, Depends(signed_in)]
Posted = Annotated[Form, Depends(posted_form)]

# What each kind of case is for, in a sentence, with the policy behind it.
INTROS = {
    "ipa_approval": "Ask to use an Individual Professional Account: an account for DWP "
    "business on a social media platform. Your line manager endorses it and the Security "
    "Advice Centre approves it (policy 5.1); once approved you confirm once a year that "
    "it is still needed and compliant (policy 3.2).",
    "policy_exception": "Ask for an exception to the policy when a business need does not "
    "fit it. The Security Advice Centre assesses the risk and a SAC lead decides "
    "(policy 5.2).",
    "abuse_investigation": "Report social media abuse directed at DWP staff: trolling, "
    "stalking, bullying, harassment, discrimination, defamation or unauthorised "
    "recording (policy 4, Annex 1). The Security Incident Response Team investigates in "
    "confidence; you will see only its progress (policy 6.3).",
    "disciplinary_referral": "Refer a breach of the policy for disciplinary action "
    "(policy 6.2, 6.4). Confidential: HR only.",
}


def may_open(me: Actor, case_type: str) -> bool:
    """Whether the service would let `me` open this type at all (its opener rule)."""
    opener = service.OPENERS.get(case_type)
    return opener is None or opener(me, {}) is None


@router.get("/cases/new")
async def choose_type(request: Request, me: Me) -> Response:
    types = [(t, INTROS.get(t, "")) for t in CASE_TYPES if may_open(me, t)]
    return render(request, "new_case_types.html", active="new", types=types)


def _form_page(
    request: Request,
    case_type: str,
    *,
    values: dict[str, str] | None = None,
    error: ServiceError | None = None,
    typed: bool = False,
) -> Response:
    rules = CASE_TYPES[case_type]
    fields = widgets(case_type, rules.details)
    errors, summary = placed(error, "new", all_names(fields)) if error else ({}, [])
    return render(
        request,
        "new_case.html",
        status_code=error.status if error else 200,
        active="new",
        case_type=case_type,
        intro=INTROS.get(case_type, ""),
        fields=fields,
        values=values or {},
        errors=errors,
        summary=summary,
        page_error=bool(summary),
        typed=typed,
    )


def _known_type(case_type: str) -> str:
    if case_type not in CASE_TYPES:
        raise NotFound(f"type: there is no kind of case called {case_type!r}")
    return case_type


@router.get("/cases/new/{case_type}")
async def new_case_form(request: Request, me: Me, case_type: str) -> Response:
    _known_type(case_type)
    opener = service.OPENERS.get(case_type)
    refusal = opener(me, {}) if opener else None
    if refusal is not None:
        return render(request, "forbidden.html", status_code=403, message=refusal.message)
    kept = take_typed(request, me)  # a form sent after its sign-in ended (app.web.resume)
    if kept is not None:
        return _form_page(request, case_type, values=kept.values, typed=True)
    return _form_page(request, case_type)


@router.post("/cases/new/{case_type}")
async def open_case(request: Request, me: Me, case_type: str, form: Posted) -> Response:
    rules = CASE_TYPES[_known_type(case_type)]
    details = from_form(rules.details, form)
    try:
        case = await service.open_case(
            services_of(request), actor=me, case_type=case_type, details=details
        )
    except ServiceError as e:
        if e.status >= 500:
            raise
        values = {k: v for k, v in form.items() if k != "csrf_token"}
        return _form_page(request, case_type, values=values, error=e)
    flash(request, f"Opened {case['id']}: now at the {text.words(case['stage'])} stage.")
    return RedirectResponse(f"/cases/{case['id']}", status_code=303)
