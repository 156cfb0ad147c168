"""Reading a posted form: Starlette's `request.form()`, the one form parser of the pages.

Every page posts an urlencoded form, but for the evidence upload (multipart, read by
`app.web.evidence` with the same `request.form()`); anything else posted to a page is
refused (400), as is a form of more than MAX_FIELDS fields.
"""

from __future__ import annotations

from starlette.datastructures import ImmutableMultiDict
from starlette.exceptions import HTTPException
from starlette.requests import Request

from app.service.errors import BadRequest
from app.web.session import check_csrf

URLENCODED = "application/x-www-form-urlencoded"
MAX_FIELDS = 200

Form = ImmutableMultiDict[str, str]  # name -> value(s), in the order posted


async def read_form(request: Request) -> Form:
    """The posted fields (blank ones kept: a cleared field is an answer too)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != URLENCODED and await request.body():
        raise BadRequest(f"form: expected {URLENCODED}, not {kind or 'no content type'}")
    try:
        form = await request.form(max_fields=MAX_FIELDS)
    except HTTPException as e:  # python-multipart's refusal, worded as the pages word theirs
        if e.status_code != 400:  # a body over the limit (413, app.api.limits) stays itself
            raise
        too_many = "fields" in str(e.detail).lower()
        raise BadRequest(f"form: more than {MAX_FIELDS} fields" if too_many else e.detail) from None
    return Form([(name, value) for name, value in form.multi_items() if isinstance(value, str)])


async def posted_form(request: Request) -> Form:
    """A FastAPI dependency for every POST route of the pages: the form, its CSRF checked."""
    form = await read_form(request)
    check_csrf(request, form)
    return form
