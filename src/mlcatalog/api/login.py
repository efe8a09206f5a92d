"""Browser login at the edge: /auth/login, /auth/callback and /auth/logout (docs/architecture.md,
"Authentication"). The flow is auth/login.py's and the sessions auth/sessions.py's; here are the
redirects, the cookies and the coded refusals."""

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from mlcatalog.api.cookies import PENDING_LOGIN_SECONDS, SessionCookies
from mlcatalog.api.http import Refusal, error_response
from mlcatalog.auth.authenticate import WithSessions
from mlcatalog.auth.login import InvalidReturnPath, PendingLogin, return_path
from mlcatalog.auth.oidc import ProviderUnavailable, Unauthenticated
from mlcatalog.catalog.errors import ErrorCode

log = logging.getLogger("mlcatalog.auth")

HOME = "/graphql"  # where a login returns without a `next`
MAX_PARAMETER = 2000  # characters of the callback's code and state


class Endpoint:
    """One path, every method: a wrong method gets a coded 405 too, and a Refusal its body."""

    def __init__(self, method: str, handle: Callable[[Request], Awaitable[Response]]) -> None:
        self.method = method
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            if request.method != self.method:
                raise Refusal(405, f"use {self.method} here", headers={"Allow": self.method})
            response = await self.handle(request)
        except Refusal as refusal:
            response = answer(refusal)
        await response(scope, receive, send)


class BrowserLogin:
    def __init__(
        self, authenticator: WithSessions, cookies: SessionCookies, redirect_url: str | None
    ) -> None:
        self.flow = authenticator.login
        self.sessions = authenticator.sessions
        self.cookies = cookies
        self.redirect_url = redirect_url

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/auth/login", Endpoint("GET", self.login)),
            Route("/auth/callback", Endpoint("GET", self.callback)),
            Route("/auth/logout", Endpoint("POST", self.logout)),
        ]

    def redirect_uri(self, request: Request) -> str:
        return self.redirect_url or str(request.base_url).rstrip("/") + "/auth/callback"

    async def login(self, request: Request) -> Response:
        """To the provider, with this browser's pending login in a short-lived cookie."""
        try:
            next_path = return_path(request.query_params.get("next"), HOME)
        except InvalidReturnPath as error:
            raise Refusal(400, str(error)) from None
        with provider_refusals():
            url, pending = await self.flow.begin(
                redirect_uri=self.redirect_uri(request), next_path=next_path
            )
        response = RedirectResponse(url, status_code=303)
        self.cookies.set(
            response, self.cookies.pending, pending.encode(), max_age=PENDING_LOGIN_SECONDS
        )
        return response

    async def callback(self, request: Request) -> Response:
        """The provider's redirect back: a session for the user, and back to ``next``. The
        pending login is used once, whatever the outcome."""
        try:
            response = await self._session_from_callback(request)
        except Refusal as refusal:
            response = answer(refusal)
        self.cookies.clear(response, self.cookies.pending)
        return response

    async def _session_from_callback(self, request: Request) -> Response:
        cookie = request.cookies.get(self.cookies.pending)
        if cookie is None:
            raise unauthenticated(
                "no login is under way in this browser (its login cookie is missing or expired):"
                " start at /auth/login"
            )
        params = request.query_params
        if "error" in params:
            raise unauthenticated(
                f"the provider refused the login: {params['error'][:100]}"
                f" {params.get('error_description', '')[:200]}".rstrip()
            )
        code, state = params.get("code"), params.get("state")
        if not code or not state or len(code) > MAX_PARAMETER or len(state) > MAX_PARAMETER:
            raise Refusal(400, "the callback needs the provider's `code` and `state`")
        with provider_refusals():
            pending = PendingLogin.decode(cookie)
            principal = await self.flow.finish(
                pending, state=state, code=code, redirect_uri=self.redirect_uri(request)
            )
        client_address, request_id = whence(request)
        started = await self.sessions.start(
            principal, client_address=client_address, request_id=request_id
        )
        response = RedirectResponse(pending.next, status_code=303)
        seconds = int((started.expires_at - datetime.now(UTC)).total_seconds())
        self.cookies.set(response, self.cookies.session, started.cookie, max_age=seconds)
        return response

    async def logout(self, request: Request) -> Response:
        """End this browser's session and forget its cookie; a POST from this server's pages or
        an allowlisted origin only, like any cookie-borne request."""
        if not self.cookies.same_origin(request):
            raise Refusal(403, "log out from this server's own pages", ErrorCode.FORBIDDEN)
        cookie = request.cookies.get(self.cookies.session)
        if cookie is not None:
            client_address, request_id = whence(request)
            await self.sessions.end(cookie, client_address=client_address, request_id=request_id)
        response = Response(status_code=204)
        self.cookies.clear(response, self.cookies.session)
        return response


def whence(request: Request) -> tuple[str | None, str | None]:
    """The client address and request id the journal records with a login or logout (the
    address as uvicorn gives it: X-Forwarded-For only from trusted proxies)."""
    state = request.scope.get("state") or {}
    return request.client.host if request.client else None, state.get("request_id")


def answer(refusal: Refusal) -> Response:
    return error_response(refusal.status, refusal.message, refusal.code, headers=refusal.headers)


def unauthenticated(message: str) -> Refusal:
    return Refusal(401, message, ErrorCode.UNAUTHENTICATED)


@contextmanager
def provider_refusals() -> Iterator[None]:
    """Unauthenticated as a coded 401; a provider that cannot be read as a 503 (its detail, the
    provider's internal address, goes to the log only)."""
    try:
        yield
    except ProviderUnavailable as error:
        log.warning("login not completed: %s", error.message)
        message = "the identity provider cannot be reached: try again later"
        raise Refusal(503, message, ErrorCode.UNAUTHENTICATED) from None
    except Unauthenticated as error:
        raise unauthenticated(error.message) from None
