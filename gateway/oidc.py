"""The OpenID Connect client of multi-tenant mode: authorize redirect, callback, profile, sign-out URL.

Built on authlib's Starlette client from `settings.open_id`. Every login uses the authorization-code
flow with PKCE (S256) whatever the provider requires, a random `state` and a `nonce`, all kept in the
signed member session cookie until the callback. The ID token's signature is checked against the
issuer's JWKS, and its issuer, audience, expiry, nonce and `at_hash` are validated; claims the ID token
leaves out (many providers omit `email` when an access token is issued) come from the userinfo
endpoint, whose `sub` must match the ID token's.

Endpoints come from `<OPEN_ID_ISSUER>/.well-known/openid-configuration`; OPEN_ID_AUTHORIZATION_URL,
OPEN_ID_TOKEN_URL and OPEN_ID_USER_INFO_URL replace what discovery says. Sign-out (RP-initiated
logout) follows AUTH_PROVIDER's convention unless OPEN_ID_END_SESSION_ENDPOINT /
OPEN_ID_RETURN_TO_QUERY_PARAM say otherwise:

| AUTH_PROVIDER | end-session URL | return parameter | also sent |
|---|---|---|---|
| auth0 | `<issuer origin>/v2/logout` | `returnTo` | `client_id` |
| cognito | `<hosted UI origin (authorization URL)>/logout` | `logout_uri` | `client_id` |
| keycloak, any other | discovery's `end_session_endpoint` | `post_logout_redirect_uri` | `client_id` |

A provider that advertises no end-session endpoint (and none is configured) gets no redirect: the
session ends locally only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx2

# authlib ships no type information.
from authlib.integrations.base_client import MismatchingStateError, OAuthError  # type: ignore[import-untyped]
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App  # type: ignore[import-untyped]
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import RedirectResponse

from engine.errors import InvalidInput, NotAuthenticated, Unavailable
from gateway.settings import OpenIdSettings

logger = logging.getLogger(__name__)

SCOPE = "openid email profile"
# Discovery, token and userinfo calls: a provider slower than this fails the login, not the worker.
HTTP_TIMEOUT_SECONDS = 10.0
CLIENT_NAME = "feedgate"


class LoginFailed(NotAuthenticated):
    """The provider refused the login, or what it sent did not verify."""


class LoginNotStartedHere(InvalidInput):
    """The callback does not belong to a login this browser started (state missing, mismatched, or
    another issuer)."""


class ProviderUnreachable(Unavailable):
    """The provider could not be reached, or answered with a configuration feedgate cannot use."""


LOGIN_ERRORS = (LoginFailed, LoginNotStartedHere, ProviderUnreachable)


@dataclass(frozen=True)
class EndSession:
    """Where to send the browser to end its session at the provider, and how to name the way back."""

    endpoint: str
    return_param: str
    extra: Mapping[str, str]

    def url(self, return_to: str) -> str:
        query = urlencode({self.return_param: return_to, **self.extra})
        separator = "&" if urlsplit(self.endpoint).query else "?"
        return f"{self.endpoint}{separator}{query}"


def plan_end_session(open_id: OpenIdSettings, metadata: Mapping[str, Any]) -> EndSession | None:
    """The provider's sign-out redirect per AUTH_PROVIDER's preset and the OPEN_ID_* overrides."""
    provider = open_id.provider.lower()
    extra = {"client_id": open_id.client_id} if open_id.client_id else {}
    endpoint: str | None
    if provider == "auth0":
        endpoint = _origin(open_id.issuer) + "/v2/logout" if open_id.issuer else None
        param = "returnTo"
    elif provider == "cognito":
        hosted_ui = open_id.authorization_url or metadata.get("authorization_endpoint")
        endpoint = _origin(hosted_ui) + "/logout" if isinstance(hosted_ui, str) else None
        param = "logout_uri"
    else:
        advertised = metadata.get("end_session_endpoint")
        endpoint = advertised if isinstance(advertised, str) and advertised else None
        param = "post_logout_redirect_uri"
    endpoint = open_id.end_session_endpoint or endpoint
    if endpoint is None:
        return None
    return EndSession(endpoint, open_id.return_to_query_param or param, extra)


class OpenIdClient:
    """One app's client of its OpenID provider; stateless (state lives in the session cookie)."""

    def __init__(self, open_id: OpenIdSettings) -> None:
        if not open_id.client_id:
            raise ValueError("OPEN_ID_CLIENT_ID must be set when AUTH_MODE=multi-tenant")
        if not open_id.issuer:
            # Its discovery document names the keys that ID tokens are verified with.
            raise ValueError("OPEN_ID_ISSUER must be set when AUTH_MODE=multi-tenant")
        self.settings = open_id
        registry = OAuth()
        self._app: StarletteOAuth2App = registry.register(
            CLIENT_NAME,
            client_id=open_id.client_id,
            client_secret=open_id.client_secret,
            server_metadata_url=_discovery_url(open_id.issuer),
            authorize_url=open_id.authorization_url,
            access_token_url=open_id.token_url,
            client_kwargs={
                "scope": SCOPE,
                # PKCE on every login: authlib makes the verifier and sends the S256 challenge.
                "code_challenge_method": "S256",
                "timeout": HTTP_TIMEOUT_SECONDS,
            },
        )
        self._overrides = {
            key: value
            for key, value in (
                ("authorization_endpoint", open_id.authorization_url),
                ("token_endpoint", open_id.token_url),
                ("userinfo_endpoint", open_id.user_info_url),
            )
            if value
        }

    async def metadata(self) -> dict[str, Any]:
        """The provider's metadata: discovery (fetched once), then the configured URLs over it.

        :raises ProviderUnreachable: discovery could not be fetched.
        """
        try:
            metadata: dict[str, Any] = await self._app.load_server_metadata()
        except (httpx2.HTTPError, ValueError) as error:
            message = f"The identity provider's configuration could not be loaded: {error}"
            raise ProviderUnreachable(message) from None
        metadata.update(self._overrides)
        return metadata

    async def authorize_redirect(self, request: Request, redirect_uri: str) -> RedirectResponse:
        """Start a login: remember state, PKCE verifier and nonce in the session, send the browser off."""
        await self.metadata()
        response: RedirectResponse = await self._app.authorize_redirect(request, redirect_uri)
        return response

    async def complete_login(self, request: Request) -> dict[str, Any]:
        """Finish a login on the callback request and return the verified profile claims.

        :raises LoginNotStartedHere: the state is missing or not this browser's.
        :raises LoginFailed: the provider refused, the code exchange failed or the ID token did not verify.
        :raises ProviderUnreachable: the provider was unreachable.
        """
        metadata = await self.metadata()
        if not request.query_params.get("state"):
            raise LoginNotStartedHere("The login response has no state; start the login again.")
        issuer = request.query_params.get("iss")
        if issuer is not None and issuer != metadata.get("issuer"):
            # RFC 9207: a response naming another issuer is an answer to some other login (mix-up).
            raise LoginNotStartedHere("The login response comes from another identity provider (iss).")
        try:
            token = await self._app.authorize_access_token(request)
        except MismatchingStateError:
            raise LoginNotStartedHere(
                "The login response does not match a login started in this browser (state mismatch);"
                " start the login again."
            ) from None
        except OAuthError as error:
            detail = f"{error.error}: {error.description}" if error.description else str(error.error)
            raise LoginFailed(f"The identity provider refused the login ({detail}).") from None
        except JoseError as error:
            raise LoginFailed(f"The ID token did not verify ({error}).") from None
        except httpx2.HTTPError as error:
            raise ProviderUnreachable(f"The identity provider could not be reached: {error}") from None
        except RuntimeError as error:
            # authlib's word for metadata it cannot work with, e.g. no `jwks_uri`.
            raise ProviderUnreachable(f"The identity provider's configuration is unusable: {error}") from None
        if "id_token" not in token or not token.get("userinfo"):
            raise LoginFailed("The identity provider returned no ID token.")
        claims = dict(token["userinfo"])
        if not claims.get("email") or "email_verified" not in claims:
            claims = {**await self._fetch_userinfo(token, claims), **claims}
        return claims

    async def end_session_url(self, return_to: str) -> str | None:
        """The provider's sign-out URL bringing the browser back to `return_to`, if it has one."""
        try:
            metadata = await self.metadata()
        except ProviderUnreachable as error:
            logger.warning("sign-out without the provider: %s", error.message)
            metadata = {}
        plan = plan_end_session(self.settings, metadata)
        return plan.url(return_to) if plan else None

    async def _fetch_userinfo(self, token: dict[str, Any], claims: Mapping[str, Any]) -> dict[str, Any]:
        try:
            userinfo = dict(await self._app.userinfo(token=token))
        except (httpx2.HTTPError, KeyError, ValueError) as error:
            raise ProviderUnreachable(
                f"The identity provider's userinfo could not be read: {error}"
            ) from None
        # OpenID Connect Core 5.3.2: a userinfo answer for another subject must not be used.
        if userinfo.get("sub") != claims.get("sub"):
            raise LoginFailed("The userinfo subject does not match the ID token's.")
        return userinfo


def _discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
