"""OpenID Connect, Casework as the relying party: the pages sign in through the
organisation's provider, and the API takes that provider's access tokens.

The provider is found by its discovery document (`CASEWORK_OIDC_ISSUER`). Sign-in is the
authorization code flow with PKCE (S256), `state` and `nonce`, all three kept in the
signed session of the browser that started it and used once. Tokens are checked with
joserfc, never by hand: the signature against the provider's JWKS (fetched again, once,
when a token names a key it does not hold: the provider rotated its keys), `iss`, `aud`
(the client id for an ID token, `CASEWORK_OIDC_AUDIENCE` for an access token), `exp`,
and an ID token's `nonce`. Authlib supplies the PKCE challenge and the random values.

Who signed in is matched to the directory by the email claim (`CASEWORK_OIDC_EMAIL_CLAIM`);
nobody is created on the fly (`app.service.identity.actor_for_claims`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from app.platform.settings import Settings
from app.service.errors import BadRequest, Unauthorized, Unavailable
from models.people import ROLES

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
DISCOVERY_TTL = 3600.0  # seconds the discovery document is kept
LEEWAY = 30  # seconds of clock difference allowed on exp, iat, nbf
TIMEOUT = httpx.Timeout(10.0)


@dataclass(frozen=True)
class Pending:
    """A sign-in under way, kept in the browser's signed session until the callback."""

    state: str
    nonce: str
    verifier: str
    next: str

    def as_dict(self) -> dict[str, str]:
        return {
            "state": self.state,
            "nonce": self.nonce,
            "verifier": self.verifier,
            "next": self.next,
        }

    @classmethod
    def from_session(cls, value: Any) -> Pending | None:
        if not isinstance(value, dict):
            return None
        try:
            return cls(*(str(value[k]) for k in ("state", "nonce", "verifier", "next")))
        except KeyError:
            return None


@dataclass(frozen=True)
class SignedIn:
    claims: dict[str, Any]
    id_token: str


class OidcClient:
    """The provider as Casework sees it: its metadata and keys, cached per process."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        self._secret = settings.oidc_client_secret
        self.audience = settings.oidc_audience
        self.redirect_uri = f"{settings.base_url}/auth/callback"
        self.after_logout_uri = f"{settings.base_url}/signin"
        self._http = http
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._lock = asyncio.Lock()

    async def _get(self, url: str) -> dict[str, Any]:
        try:
            if self._http is not None:
                response = await self._http.get(url, timeout=TIMEOUT)
            else:
                async with httpx.AsyncClient(timeout=TIMEOUT) as http:
                    response = await http.get(url)
            response.raise_for_status()
            found = response.json()
        except (httpx.HTTPError, ValueError) as e:
            raise Unavailable(f"oidc: the identity provider did not answer ({e})") from None
        if not isinstance(found, dict):
            raise Unavailable(f"oidc: {url} did not answer a JSON object")
        return found

    async def metadata(self) -> dict[str, Any]:
        """The discovery document, whose issuer must be the one configured."""
        if self._metadata is None or time.monotonic() - self._metadata_at > DISCOVERY_TTL:
            found = await self._get(f"{self.issuer}/.well-known/openid-configuration")
            if found.get("issuer") != self.issuer:
                raise Unavailable(
                    f"oidc: the discovery document names issuer {found.get('issuer')!r}"
                )
            self._metadata, self._metadata_at = found, time.monotonic()
        return self._metadata

    async def _key_set(self, refresh: bool = False) -> KeySet:
        async with self._lock:
            if self._keys is None or refresh:
                jwks = await self._get(str((await self.metadata())["jwks_uri"]))
                try:
                    self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
                except (JoseError, ValueError, TypeError) as e:
                    raise Unavailable(f"oidc: the provider's JWKS cannot be read ({e})") from None
            return self._keys

    async def verify(
        self, token: str, *, audience: str, nonce: str | None = None
    ) -> dict[str, Any]:
        """The claims of a JWT the provider signed for `audience`; Unauthorized otherwise."""
        try:
            header = extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError):
            raise Unauthorized("token: not a signed JWT") from None
        if header.get("alg") not in ALGORITHMS:
            raise Unauthorized(f"token: algorithm {header.get('alg')!r} is not accepted")
        keys = await self._key_set()
        kid = header.get("kid")
        if kid is not None and all(k.kid != kid for k in keys.keys):
            keys = await self._key_set(refresh=True)  # rotated: fetch the keys again, once
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as e:
            raise Unauthorized(f"token: signature not valid ({e.__class__.__name__})") from None
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": audience},
            "exp": {"essential": True},
            "sub": {"essential": True},
        }
        if nonce is not None:
            options["nonce"] = {"essential": True, "value": nonce}
        try:
            jwt.JWTClaimsRegistry(leeway=LEEWAY, **options).validate(decoded.claims)
        except JoseError as e:
            raise Unauthorized(f"token: {e.description or e.error}") from None
        claims: dict[str, Any] = dict(decoded.claims)
        return claims

    async def start(self, next_path: str) -> tuple[str, Pending]:
        """Where to send the browser, and what to keep in its session until it is back."""
        pending = Pending(generate_token(32), generate_token(32), generate_token(64), next_path)
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid email profile",
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": create_s256_code_challenge(pending.verifier),
            "code_challenge_method": "S256",
        }
        endpoint = str((await self.metadata())["authorization_endpoint"])
        return f"{endpoint}?{urlencode(query)}", pending

    async def finish(self, *, code: str, pending: Pending) -> SignedIn:
        """Exchange the code (with the PKCE verifier) and check the ID token."""
        metadata = await self.metadata()
        # client_secret_basic: each part form-urlencoded first (RFC 6749 2.3.1).
        auth = (quote(self.client_id, safe=""), quote(self._secret, safe=""))
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": pending.verifier,
        }
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT) as http:
                response = await (self._http or http).post(
                    str(metadata["token_endpoint"]), data=form, auth=auth
                )
            answer = response.json()
        except (httpx.HTTPError, ValueError) as e:
            raise Unavailable(f"oidc: the identity provider did not answer ({e})") from None
        if response.status_code != 200 or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            raise BadRequest(f"code: the provider refused it ({error or response.status_code})")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise BadRequest("id_token: the provider sent none")
        claims = await self.verify(id_token, audience=self.client_id, nonce=pending.nonce)
        return SignedIn(claims, id_token)

    async def logout_url(self, id_token: str | None) -> str | None:
        """The provider's end-session address (RP-initiated logout), if it has one."""
        endpoint = (await self.metadata()).get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        query = {"client_id": self.client_id, "post_logout_redirect_uri": self.after_logout_uri}
        if id_token:
            query["id_token_hint"] = id_token
        return f"{endpoint}?{urlencode(query)}"


def looks_like_jwt(token: str) -> bool:
    """A JWS in compact form (three base64url parts): a provider's token, not Casework's."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].startswith("eyJ"):
        return False
    try:
        return isinstance(json.loads(_b64(parts[0])), dict)
    except ValueError:
        return False


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def roles_from_claims(settings: Settings, claims: dict[str, Any]) -> list[str] | None:
    """Roles from the provider's group claim through CASEWORK_OIDC_ROLE_CLAIM's mapping
    (None: not configured, the directory's roles count)."""
    mapping = settings.oidc_roles
    if mapping is None:
        return None
    claim, groups = mapping
    given = claims.get(claim)
    names = [given] if isinstance(given, str) else given if isinstance(given, list) else []
    roles: list[str] = []
    for group in names:
        role = groups.get(str(group)) if groups else str(group)
        if role in ROLES and role not in roles:
            roles.append(role)
    return roles
