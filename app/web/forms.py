"""Reading a posted form without a multipart parser: pages post urlencoded forms only.

Starlette's `request.form()` needs python-multipart; the pages upload no files
(evidence files go through the API), so the standard library's parser will do.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request

from app.service.errors import BadRequest
from app.web.session import check_csrf

URLENCODED = "application/x-www-form-urlencoded"
MAX_FIELDS = 200

Form = ImmutableMultiDict[str, str]  # name -> value(s), in the order posted


async def read_form(request: Request) -> Form:
    """The posted fields (blank ones kept: a cleared field is an answer too)."""
    raw = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if raw and kind != URLENCODED:
        raise BadRequest(f"form: expected {URLENCODED}, not {kind or 'no content type'}")
    body = raw.decode("utf-8", "replace")
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise BadRequest(f"form: more than {MAX_FIELDS} fields") from None
    return Form(pairs)


async def posted_form(request: Request) -> Form:
    """A FastAPI dependency for every POST route of the pages: the form, its CSRF checked."""
    form = await read_form(request)
    check_csrf(request, form)
    return form
