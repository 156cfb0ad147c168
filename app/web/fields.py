"""Form fields from the case-type tables: a widget per `workflows.rules.Field`, the
posted strings turned back into the values `clean_fields` checks, and the service's
refusals placed beside the fields they name.

No rule is checked here: the service refuses bad values (every field at once, each in
plain words: `workflows.rules.field_problems`), and the page shows each beside its field
and in the error summary, linked to it. What is written here is help text: which
section of the policy a rule comes from, shown beside the field it governs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.service.errors import Problem, ServiceError
from domain.text import label
from workflows import investigation_types
from workflows.rules import Field

# Fields whose value is an object: their sub-fields, posted as `perpetrator.kind` etc.
OBJECT_FIELDS: dict[str, tuple[Field, ...]] = {"perpetrator": investigation_types.PERPETRATOR}

# Beside a field, in plain words: the policy's rule and the section it comes from.
RULE_HINTS: dict[tuple[str, str], str] = {
    ("ipa_approval", "account_kind"): "Personal accounts need no approval (policy 5.1). "
    "Official trade union accounts are outside this policy (policy 7.2).",
    ("ipa_approval", "device"): "Individual Professional Accounts are used on DWP devices "
    "unless an exception to policy is granted: choosing a personal device raises one "
    "(policy 5.1).",
    ("ipa_approval", "contact_email"): "A LinkedIn account must use a personal email "
    "address, not a DWP one (policy 5.1).",
    ("ipa_approval", "exception_case"): "Optional: a policy exception of yours, open or "
    "approved, that covers a personal device, e.g. PEX-2026-000001 (policy 5.1).",
    ("policy_exception", "policy_section"): "The section of the Social Media Policy the "
    "business need does not fit, e.g. 5.1 (policy 5.2).",
    ("policy_exception", "duration_days"): "How long the exception is needed: 1 to 365 "
    "days (policy 5.2).",
    ("policy_exception", "related_case"): "Optional: the case this exception is for.",
    ("abuse_investigation", "category"): "The kinds of abuse the Department will "
    "investigate (policy 4.1 and Annex 1).",
    ("abuse_investigation", "source"): "A report from staff, or found by routine "
    "monitoring (policy 6.3).",
    ("abuse_investigation", "occurred_on"): "When it happened; not a date in the future.",
    ("abuse_investigation", "perpetrator.email"): "Required when the perpetrator is an "
    "employee (policy 6.2).",
    ("disciplinary_referral", "subject"): "The employee referred; nobody may refer "
    "themselves (policy 6.2).",
    ("disciplinary_referral", "criminal_consideration"): "Whether a criminal prosecution "
    "should be considered (policy 6.2).",
}

KIND_HINTS = {
    "emails": "Email addresses, one per line.",
    "urls": "Links (http or https), one per line.",
    "duration": "Working days such as 5wd, or a period such as P14D.",
    "date": "As YYYY-MM-DD.",
}
LONG_TEXT = 200  # longer than this (or unlimited): a text area


@dataclass(frozen=True)
class Widget:
    """One form control, ready for templates/web/_fields.html."""

    name: str  # the input's name; a sub-field's is dotted: perpetrator.kind
    label: str
    control: str  # text, textarea, select, radios, email, number, date, url, lines, group
    required: bool
    choices: tuple[str, ...] = ()
    policy: str | None = None
    hint: str = ""
    parts: tuple[Widget, ...] = ()  # the sub-fields of a group
    # A person picker's people (control "person"): (email, shown as).
    options: tuple[tuple[str, str], ...] = ()


def _control(spec: Field) -> str:
    if spec.kind == "text":
        return "textarea" if spec.max is None or spec.max > LONG_TEXT else "text"
    return {
        "choice": "select",
        "bool": "radios",
        "int": "number",
        "emails": "lines",
        "urls": "lines",
        "object": "group",
        "duration": "text",
    }.get(spec.kind, spec.kind)  # email, date, url


def widgets(case_type: str, specs: tuple[Field, ...], prefix: str = "") -> list[Widget]:
    """The widgets for a details table or an action's fields, in table order."""
    out = []
    for spec in specs:
        name = prefix + spec.name
        hints = [RULE_HINTS.get((case_type, name), ""), KIND_HINTS.get(spec.kind, "")]
        parts = tuple(widgets(case_type, OBJECT_FIELDS.get(spec.name, ()), f"{name}."))
        out.append(
            Widget(
                name=name,
                label=label(spec.name),
                control=_control(spec),
                required=spec.required,
                choices=spec.choices,
                policy=spec.policy,
                hint=" ".join(h for h in hints if h),
                parts=parts,
            )
        )
    return out


def _value(spec: Field, raw: str) -> Any:
    """A posted string as the value its kind expects; left as typed where it is not one,
    so the service's refusal names the field and says what it must be."""
    text = raw.strip()
    if spec.kind == "bool":
        return {"yes": True, "no": False}.get(text, text)
    if spec.kind == "int":
        return int(text) if re.fullmatch(r"-?[0-9]{1,9}", text) else text
    if spec.kind in ("emails", "urls"):
        return [part for part in re.split(r"[\s,;]+", text) if part]
    return raw if spec.kind == "text" else text


def from_form(
    specs: tuple[Field, ...], form: Mapping[str, str], prefix: str = ""
) -> dict[str, Any]:
    """The posted values of `specs` (blank ones left out: "required" is the service's)."""
    values: dict[str, Any] = {}
    for spec in specs:
        name = prefix + spec.name
        if spec.kind == "object":
            part = from_form(OBJECT_FIELDS.get(spec.name, ()), form, f"{name}.")
            if part:
                values[spec.name] = part
            continue
        raw = form.get(name)
        if raw is not None and raw.strip():
            values[spec.name] = _value(spec, raw)
    return values


def error_field(message: str) -> str | None:
    """The field a service message names (`details.perpetrator.email: ...` ->
    `perpetrator.email`), to show it there; None for the form as a whole."""
    head, sep, _ = message.partition(":")
    if not sep or " " in head:
        return None
    field = head.removeprefix("details.")
    return None if field in ("actor", "action", "case", "id", "type", "fields") else field


@dataclass(frozen=True)
class Shown:
    """One line of an error summary: what to do, and the field it links to (if any)."""

    text: str
    href: str | None


def field_id(form_id: str, name: str) -> str:
    """The id of a field's control (_fields.html): `new` + `perpetrator.email` ->
    `new-perpetrator-email`; a radio group's first radio has it too."""
    return f"{form_id}-{name.replace('.', '-')}"


def all_names(fields: list[Widget]) -> set[str]:
    return {w.name for w in fields} | {p.name for w in fields for p in w.parts}


def placed(
    error: ServiceError, form_id: str, names: set[str]
) -> tuple[dict[str, str], list[Shown]]:
    """A refusal's problems as a page shows them: beside each field it names (name ->
    words), and the summary's list, each linked to its field; a problem naming no field
    of the form is in the summary alone."""
    problems = error.problems or (Problem(error_field(error.message), error.message, error.plain),)
    beside: dict[str, str] = {}
    summary: list[Shown] = []
    for problem in problems:
        name = (problem.field or "").removeprefix("details.")
        if name in names and name not in beside:
            beside[name] = problem.plain
            summary.append(Shown(problem.plain, f"#{field_id(form_id, name)}"))
        else:
            summary.append(Shown(problem.plain, None))
    return beside, summary
