"""Single sign-on through a real OpenID Connect provider (`oidc/provider.mjs`, started
here with node), for the pages and the API; and each bad token refused. On both
databases and the time-skipping server."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import nullcontext
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func, select

from app.runtime import oidc_demo
from app.runtime.webapp import create_app
from app.service.errors import Unauthorized
from app.service.leavers import deactivate
from app.service.oidc import OidcClient
from app.service.services import Services
from models import Person
from tests.app.conftest import PEOPLE
from tests.app.web.conftest import BASE
from tests.fixtures_temporal import free_port

STRANGER = "stranger@dwp.gov.uk"  # the provider knows them, Casework's directory does not

pytestmark = pytest.mark.skipif(oidc_demo.available() is not None, reason="no demo provider")


@pytest.fixture(scope="session")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[oidc_demo.DemoProvider]:
    people = tmp_path_factory.mktemp("oidc") / "people.csv"
    people.write_text(PEOPLE + f"{STRANGER},Stranger,,\n", encoding="utf-8")
    started = oidc_demo.start(port=free_port(), base_url=BASE, people_csv=people)
    yield started
    started.stop()


@pytest.fixture
async def sso(services: Services, provider: oidc_demo.DemoProvider) -> Services:
    settings = services.settings.model_copy(
        update={
            "base_url": BASE,
            "oidc_issuer": provider.issuer,
            "oidc_client_id": provider.client_id,
            "oidc_client_secret": provider.client_secret,
        }
    )
    return replace(services, settings=settings, _oidc=None)


@pytest.fixture
async def app_client(sso: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(lambda: nullcontext(sso))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        yield client


async def at_provider(url: str, email: str, password: str = oidc_demo.PASSWORD) -> httpx.Response:
    """Follow the provider's pages from `url` as a person would, signing in with the
    login form; the provider's last answer (its redirect back to Casework, or a page)."""
    async with httpx.AsyncClient() as browser:
        response = await browser.get(url)
        while response.status_code in (302, 303) and not response.headers["location"].startswith(
            BASE
        ):
            response = await browser.get(urljoin(str(response.url), response.headers["location"]))
        assert "Sign in to the demo provider" in response.text, response.text
        action = urljoin(str(response.url), f"{urlsplit(str(response.url)).path}/login")
        response = await browser.post(action, data={"login": email, "password": password})
        while response.status_code in (302, 303) and not response.headers["location"].startswith(
            BASE
        ):
            response = await browser.get(urljoin(str(response.url), response.headers["location"]))
        return response


async def sign_in(client: httpx.AsyncClient, email: str, next: str = "/") -> httpx.Response:
    """Start at Casework, sign in at the provider, come back: Casework's answer."""
    start = await client.get("/auth/login", params={"next": next})
    assert start.status_code == 303
    back = await at_provider(start.headers["location"], email)
    assert back.status_code in (302, 303), back.text
    return await client.get(back.headers["location"].removeprefix(BASE))


async def test_an_employee_signs_in_through_the_provider(app_client: httpx.AsyncClient) -> None:
    page = await app_client.get("/signin")
    assert "Sign in with your organisation" in page.text
    done = await sign_in(app_client, "employee@dwp.gov.uk", next="/cases/new")
    assert done.status_code == 303 and done.headers["location"] == "/cases/new"
    home = await app_client.get("/")
    assert home.status_code == 200 and "Employee" in home.text


async def test_signing_out_ends_the_providers_session_too(
    app_client: httpx.AsyncClient, provider: oidc_demo.DemoProvider
) -> None:
    await sign_in(app_client, "employee@dwp.gov.uk")
    home = await app_client.get("/")
    # The page's forms may lead to the provider (and nowhere else): signing out goes there.
    policy = home.headers["content-security-policy"]
    assert f"form-action 'self' {provider.issuer};" in policy
    csrf = home.text.split('name="csrf_token" value="')[1].split('"')[0]
    out = await app_client.post("/signout", data={"csrf_token": csrf})
    assert out.status_code == 303
    location = out.headers["location"]
    assert location.startswith(f"{provider.issuer}/session/end?")
    query = parse_qs(urlsplit(location).query)
    assert query["post_logout_redirect_uri"] == [f"{BASE}/signin"] and query["id_token_hint"]
    assert (await app_client.get("/")).status_code == 303  # signed out here


async def test_a_replayed_state_and_a_state_from_elsewhere_are_refused(
    app_client: httpx.AsyncClient, sso: Services
) -> None:
    start = await app_client.get("/auth/login")
    back = await at_provider(start.headers["location"], "employee@dwp.gov.uk")
    callback = back.headers["location"].removeprefix(BASE)
    assert (await app_client.get(callback)).status_code == 303
    await app_client.get("/signin")
    replayed = await app_client.get(callback)
    assert replayed.status_code == 400 and "state" in replayed.text
    # Someone else's browser, with no sign-in of its own under way.
    app = app_client._transport  # the same app, a browser with no cookies
    async with httpx.AsyncClient(transport=app, base_url=BASE) as other:
        assert (await other.get(callback)).status_code == 400
        forged = await other.get("/auth/callback", params={"state": "x", "code": "y"})
        assert forged.status_code == 400


async def test_no_open_redirect_through_the_return_address(app_client: httpx.AsyncClient) -> None:
    for next in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        done = await sign_in(app_client, "employee@dwp.gov.uk", next=next)
        assert done.headers["location"] == "/"


async def test_an_unknown_or_deactivated_person_is_refused_and_nothing_is_created(
    app_client: httpx.AsyncClient, sso: Services
) -> None:
    count = select(func.count()).select_from(Person)
    before = await sso.run(lambda s: s.scalar(count))
    refused = await sign_in(app_client, STRANGER)
    assert refused.status_code == 403
    assert f"{STRANGER} is not in Casework" in refused.text
    assert await sso.run(lambda s: s.scalar(count)) == before
    # A leaver: signed out at their next request, and refused at the next sign-in.
    await sign_in(app_client, "officer@dwp.gov.uk")
    assert (await app_client.get("/")).status_code == 200
    await deactivate(sso, email="officer@dwp.gov.uk")
    assert (await app_client.get("/")).status_code == 303
    again = await sign_in(app_client, "officer@dwp.gov.uk")
    assert again.status_code == 403 and "deactivated" in again.text


# ---- the API and the provider's access tokens ---------------------------------------------


async def access_token(provider: oidc_demo.DemoProvider, email: str) -> dict[str, Any]:
    """A script's own code flow for the resource `urn:casework:api`: the token response."""
    async with httpx.AsyncClient() as http:
        meta = (await http.get(f"{provider.issuer}/.well-known/openid-configuration")).json()
    verifier = generate_token(64)
    query = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": f"{BASE}/auth/callback",
        "scope": "openid email profile",
        "state": "s",
        "nonce": "n",
        "resource": "urn:casework:api",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    back = await at_provider(f"{meta['authorization_endpoint']}?{urlencode(query)}", email)
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    from urllib.parse import quote

    async with httpx.AsyncClient() as http:
        answer = await http.post(
            meta["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": f"{BASE}/auth/callback",
                "code_verifier": verifier,
            },
            auth=(quote(provider.client_id, safe=""), quote(provider.client_secret, safe="")),
        )
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_api_takes_the_providers_access_tokens_and_refuses_bad_ones(
    app_client: httpx.AsyncClient, provider: oidc_demo.DemoProvider, sso: Services
) -> None:
    tokens = await access_token(provider, "employee@dwp.gov.uk")
    me = await app_client.get("/api/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["email"] == "employee@dwp.gov.uk"
    head, body, sig = tokens["access_token"].split(".")
    tampered_sig = f"{head}.{body}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["email"] = "saclead@dwp.gov.uk"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    for bad in (
        tampered_sig,  # signature altered
        f"{head}.{forged_body}.{sig}",  # claims altered under the old signature
        tokens["id_token"],  # an ID token: the client's audience, not the API's
    ):
        refused = await app_client.get("/api/me", headers=bearer(bad))
        assert refused.status_code == 401, bad
        assert refused.json()["error"]["code"] == "unauthorized"
    # The provider rotates its keys: new tokens are signed with a key Casework has not
    # seen, which it fetches once; old ones no longer verify.
    provider.rotate_keys()
    time.sleep(0.5)
    fresh = await access_token(provider, "employee@dwp.gov.uk")
    assert (
        await app_client.get("/api/me", headers=bearer(fresh["access_token"]))
    ).status_code == 200
    assert (
        await app_client.get("/api/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401
    # A leaver's token stops at once.
    await deactivate(sso, email="employee@dwp.gov.uk")
    assert (
        await app_client.get("/api/me", headers=bearer(fresh["access_token"]))
    ).status_code == 401


async def test_roles_from_the_providers_groups_where_mapped(
    sso: Services, provider: oidc_demo.DemoProvider
) -> None:
    mapped = replace(
        sso,
        settings=sso.settings.model_copy(update={"oidc_role_claim": "groups:sac=sac_lead"}),
        _oidc=None,
    )
    app = create_app(lambda: nullcontext(mapped))
    tokens = await access_token(provider, "officer@dwp.gov.uk")  # the provider's groups: sac
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        me = (await client.get("/api/me", headers=bearer(tokens["access_token"]))).json()
    assert (me["roles"], me["manager"]) == (["sac_lead"], "saclead@dwp.gov.uk")


# ---- each claim check, against an issuer whose key the test holds ---------------------------


class _Issuer(BaseHTTPRequestHandler):
    documents: dict[str, Any] = {}

    def do_GET(self) -> None:
        found = self.documents.get(self.path)
        body = json.dumps(found).encode()
        self.send_response(200 if found else 404)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def own_issuer() -> Iterator[tuple[str, RSAKey]]:
    """A second, real issuer on a free port: a discovery document and a JWKS."""
    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    _Issuer.documents = {
        "/.well-known/openid-configuration": {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/jwks",
            "authorization_endpoint": f"{issuer}/auth",
            "token_endpoint": f"{issuer}/token",
        },
        "/jwks": {"keys": [key.as_dict(private=False)]},
    }
    server = ThreadingHTTPServer(("127.0.0.1", port), _Issuer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield issuer, key
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("change", "nonce", "why"),
    [
        ({}, "n1", None),
        ({"exp": -3600}, "n1", "expired"),
        ({"iss": "https://elsewhere.example"}, "n1", "iss"),
        ({"aud": "someone-else"}, "n1", "aud"),
        ({"nonce": None}, "n1", "nonce"),
        ({"nonce": "other"}, "n1", "nonce"),
        ({"sub": None}, None, "sub"),
    ],
)
async def test_each_claim_is_checked(
    own_issuer: tuple[str, RSAKey],
    settings: Any,
    change: dict[str, Any],
    nonce: str | None,
    why: str | None,
) -> None:
    issuer, key = own_issuer
    client = OidcClient(
        settings.model_copy(
            update={"oidc_issuer": issuer, "oidc_client_id": "cw", "oidc_client_secret": "s"}
        )
    )
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": "cw",
        "sub": "someone",
        "exp": now + 600,
        "iat": now,
        "nonce": "n1",
        "email": "employee@dwp.gov.uk",
    }
    for name, value in change.items():
        if value is None:
            claims.pop(name)
        elif name == "exp":
            claims["exp"] = now + value
        else:
            claims[name] = value
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
    if why is None:
        assert (await client.verify(token, audience="cw", nonce=nonce))["sub"] == "someone"
        return
    with pytest.raises(Unauthorized) as refused:
        await client.verify(token, audience="cw", nonce=nonce)
    assert why in refused.value.message.lower() or why == "expired", refused.value.message


def test_the_provider_script_is_the_projects_own() -> None:
    assert Path(oidc_demo.SCRIPT).is_file()
