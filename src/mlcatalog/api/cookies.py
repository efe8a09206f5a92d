"""The browser-login cookies (names, attributes) and the CSRF check for cookie-borne requests.

CSRF: a POST that a session cookie authenticates must carry an ``Origin`` that is the server's
own or one of ``server.cors_origins``. Browsers send ``Origin`` with every POST (same-origin
ones included) and a page cannot forge it, so a cross-site form or fetch that rides the cookie
is refused with FORBIDDEN; chosen over a CSRF token because GraphiQL and allowlisted dashboards
need no change to pass it, and the server keeps no second secret per session. A POST without
``Origin`` (no browser sends one) is refused too. Bearer requests need no check: no browser
attaches an Authorization header on its own. SameSite=Lax already keeps the cookie off
cross-site POSTs in current browsers; the Origin check does not rely on it.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import Response

from mlcatalog.settings import Settings

PENDING_LOGIN_SECONDS = 600  # from /auth/login to the callback: the time to log in


@dataclass(frozen=True)
class SessionCookies:
    session: str  # the session's id and secret
    pending: str  # a login under way in this browser (auth/login.PendingLogin)
    secure: bool
    own_origin: str | None  # from auth.redirect_url; None: each request's own
    origins: frozenset[str]  # server.cors_origins

    @classmethod
    def from_settings(cls, settings: Settings) -> "SessionCookies":
        auth = settings.auth
        # __Host-: only a Secure cookie for / set by this very host, so a sibling subdomain cannot
        # plant a session or a login of its own (login CSRF). Browsers refuse the prefix without
        # Secure, so plain-http development drops it.
        prefix = "__Host-" if auth.cookie_secure else ""
        own = None
        if auth.redirect_url is not None:
            url = urlsplit(auth.redirect_url)
            own = f"{url.scheme}://{url.netloc}"
        return cls(
            session=f"{prefix}mlcatalog_session",
            pending=f"{prefix}mlcatalog_login",
            secure=auth.cookie_secure,
            own_origin=own,
            origins=frozenset(settings.server.cors_origins),
        )

    def same_origin(self, request: HTTPConnection) -> bool:
        """Whether the request comes from this server's pages or an allowlisted origin."""
        origin = request.headers.get("origin")
        if origin is None:
            return False
        own = self.own_origin or f"{request.url.scheme}://{request.url.netloc}"
        return origin == own or origin in self.origins

    def set(self, response: Response, name: str, value: str, *, max_age: int) -> None:
        # HttpOnly: no script reads it; SameSite=Lax: sent on the provider's redirect back (a
        # top-level GET) but not on cross-site subrequests or POSTs.
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")
