"""The service layer the API, the pages, the CLI and the tests call.

Each function takes keyword-only arguments, owns its transaction and raises
`app.service.errors.ServiceError`s; none knows of HTTP. One module per reason to
change: `cases` (open, read, act), `listing` and `queries` (lists), `signin`,
`identity`, `auth` and `throttle` (who is asking), `evidence`, `exports`, `dashboard`,
`audit`, `people`, `policy_apply`, `health`, `mailbox`, and `services` (the `Services`
bundle every function receives; `app.runtime.bootstrap` builds it).

The case operations are named here too, so that a front end reads as what it does:
`service.open_case(...)`, `service.act(...)`.
"""

from app.service.cases import (
    OPENERS,
    act,
    case_events,
    eligible_assignees,
    get_case,
    open_case,
    preview_action,
    refusal_words,
    unavailable_actions,
)
from app.service.evidence import evidence_download, upload_evidence
from app.service.identity import actor_for, whoami
from app.service.listing import DEFAULT_LIMIT, MAX_LIMIT, list_cases
from app.service.names import names_of
from app.service.signin import CaseRead, authenticate, authenticate_reading

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "OPENERS",
    "CaseRead",
    "act",
    "actor_for",
    "authenticate",
    "authenticate_reading",
    "case_events",
    "eligible_assignees",
    "evidence_download",
    "get_case",
    "list_cases",
    "names_of",
    "open_case",
    "preview_action",
    "refusal_words",
    "unavailable_actions",
    "upload_evidence",
    "whoami",
]
