"""The member session cookie: what `request.session` holds for the dashboard and `/api/*`.

A drop-in for Starlette's SessionMiddleware, signed through `gateway.tokens` so it shares key
rotation and purpose salting with every other signed value. The cookie is httpOnly, SameSite=Lax
(sent on the top-level redirect back from the OpenID provider, never on cross-site subrequests) and
Secure when SESSION_COOKIE_SECURE is set. It never reaches `/api-l/embedded/*`, which only reads
bearer tokens.
"""

from __future__ import annotations

import json
from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.tokens import Purpose, TokenSigner

COOKIE_NAME = "feedgate_session"
# Dittofeed's single-tenant cookie lives 14 days.
MAX_AGE_SECONDS = 14 * 24 * 3600


class MemberSessionMiddleware:
    def __init__(self, app: ASGIApp, signer: TokenSigner, *, secure: bool) -> None:
        self.app = app
        self.signer = signer
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        initial: dict[str, object] = {}
        raw = connection.cookies.get(COOKIE_NAME)
        if raw:
            try:
                initial, _ = self.signer.load(Purpose.MEMBER_SESSION, raw, max_age=MAX_AGE_SECONDS)
            except Exception:
                initial = {}
        scope["session"] = dict(initial)
        snapshot = json.dumps(initial, sort_keys=True)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                session = scope["session"]
                if json.dumps(session, sort_keys=True) != snapshot:
                    headers = MutableHeaders(scope=message)
                    headers.append("Set-Cookie", self._cookie(session))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _cookie(self, session: dict[str, object]) -> str:
        cookie: SimpleCookie = SimpleCookie()
        if session:
            cookie[COOKIE_NAME] = self.signer.sign(Purpose.MEMBER_SESSION, session)
            cookie[COOKIE_NAME]["max-age"] = MAX_AGE_SECONDS
        else:
            cookie[COOKIE_NAME] = ""
            cookie[COOKIE_NAME]["max-age"] = 0
        morsel = cookie[COOKIE_NAME]
        morsel["path"] = "/"
        morsel["httponly"] = True
        morsel["samesite"] = "Lax"
        if self.secure:
            morsel["secure"] = True
        return morsel.OutputString()
