"""ASGI middleware of the HTTP edge: request ids, security headers and the body limit."""

import logging
import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlcatalog.api.http import error_response
from mlcatalog.catalog.errors import ErrorCode

log = logging.getLogger("mlcatalog.api")

REQUEST_ID_HEADER = "x-request-id"
# An incoming id is kept only when it is short and plain, so it is safe in logs and headers.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")


def request_id_of(scope: Scope) -> str:
    name: bytes
    value: bytes
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(incoming):
                return incoming
            break
    return uuid.uuid4().hex


class RequestId:
    """Name each request: a sane incoming ``X-Request-ID`` or a new one.

    It is stored in ``scope["state"]["request_id"]`` (read by the GraphQL context and the access
    log) and returned in the ``X-Request-ID`` response header. An exception that escapes the
    application is logged here once, with the id, and answered with a coded 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def named(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, named)
        except Exception:
            log.exception(
                "unhandled error (request %s)", request_id, extra={"request_id": request_id}
            )
            if started or scope["type"] != "http":
                raise
            response = error_response(
                500,
                "internal error; it has been logged",
                ErrorCode.INTERNAL,
                request_id=request_id,
            )
            await response(scope, receive, named)


class SecurityHeaders:
    """Headers every response carries; a response that sets its own CSP (GraphiQL) keeps it."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = {
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
            "Cross-Origin-Resource-Policy": "same-origin",
        }
        if hsts:
            # Production runs behind TLS; browsers ignore the header on plain HTTP.
            self.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, secured)


class BodyLimit:
    """Refuse request bodies over a limit before they are read whole (413, as a GraphQL error)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self.refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except TooLarge:
            await self.refuse(scope, receive, send)

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body is larger than {self.limit} bytes"
        await error_response(413, message, ErrorCode.INVALID_ARGUMENT)(scope, receive, send)


class TooLarge(Exception):
    pass
