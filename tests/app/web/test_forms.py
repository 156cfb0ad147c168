"""The pages' one form parser (app.web.forms): urlencoded only, at most 200 fields, each
refusal a 400 page saying why; a body over the limit is still a 413."""

from __future__ import annotations

from app.api.limits import MAX_BODY
from app.web.forms import MAX_FIELDS
from tests.app.web.conftest import Browser


async def test_a_form_of_too_many_fields_is_refused(offline_browser: Browser) -> None:
    await offline_browser.get("/signin")
    fields = {f"f{n}": "x" for n in range(MAX_FIELDS)}
    page = await offline_browser.post("/signin", fields)  # with its CSRF token: one more
    assert page.status_code == 400
    assert f"form: more than {MAX_FIELDS} fields" in page.text


async def test_only_urlencoded_forms_are_read(offline_browser: Browser) -> None:
    await offline_browser.get("/signin")
    page = await offline_browser.client.post("/signin", json={"token": "x"})
    assert page.status_code == 400
    assert "form: expected application/x-www-form-urlencoded, not application/json" in page.text


async def test_a_form_over_the_body_limit_is_413(offline_browser: Browser) -> None:
    await offline_browser.get("/signin")
    page = await offline_browser.post("/signin", {"token": "x" * (MAX_BODY + 1)})
    assert page.status_code == 413
