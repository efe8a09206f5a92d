"""GraphQL over HTTP: strict request parsing, media types, status codes and coded error bodies.

Every request this view refuses gets a 4xx and a GraphQL-shaped body,
``{"errors": [{"message": …, "extensions": {"code": …}}]}``, never a plain-text or 500 answer.
A client that accepts ``application/graphql-response+json`` gets that media type and, per the
GraphQL over HTTP specification, a 400 without ``data`` for a document that fails to parse or
validate or for variables that fail coercion; ``application/json`` clients keep 200 with errors.
"""

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from itertools import accumulate
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from mlcatalog import __version__
from mlcatalog.api import graphiql
from mlcatalog.api.cache import Entry, ResponseCache, keepable, matches
from mlcatalog.api.context import Context
from mlcatalog.api.cookies import SessionCookies
from mlcatalog.api.limits import rate_limit_error
from mlcatalog.api.observability import record_cached
from mlcatalog.api.rates import RateLimits
from mlcatalog.api.schema import CatalogSchema
from mlcatalog.api.websocket import Connections, LegacyWS, TransportWS, WebSocketCaller
from mlcatalog.auth.access import Policies, access_of
from mlcatalog.auth.authenticate import Authenticator
from mlcatalog.auth.oidc import ProviderUnavailable, Unauthenticated
from mlcatalog.auth.principal import Method, Principal
from mlcatalog.catalog.errors import ErrorCode
from mlcatalog.events.hub import Hub
from mlcatalog.search.backend import SearchBackend
from mlcatalog.settings import Settings
from mlcatalog.store.database import Database

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"

MAX_JSON_DEPTH = 64

log = logging.getLogger("mlcatalog.auth")


@dataclass(frozen=True)
class EdgePolicy:
    """What the edge allows: open in development and test, closed in production."""

    graphiql: bool
    introspection: bool
    get_queries: bool
    production: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> "EdgePolicy":
        production = settings.environment == "production"
        server = settings.server

        def unless_production(flag: bool | None) -> bool:
            return (not production) if flag is None else flag

        return cls(
            graphiql=unless_production(server.graphiql),
            introspection=unless_production(server.introspection),
            get_queries=unless_production(server.get_queries),
            production=production,
        )


class Refusal(Exception):
    """A request refused before execution: its status, message and code for the client."""

    def __init__(
        self,
        status: int,
        message: str,
        code: ErrorCode = ErrorCode.INVALID_ARGUMENT,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


def error_response(
    status: int,
    message: str,
    code: ErrorCode | str,
    *,
    media_type: str = JSON,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
) -> Response:
    extensions: dict[str, str] = {"code": str(code)}
    if request_id is not None:
        extensions["requestId"] = request_id
    body = {"errors": [{"message": message, "extensions": extensions}]}
    return JSONResponse(body, status_code=status, media_type=media_type, headers=headers)


def response_media_type(accept: str | None) -> str:
    """``application/graphql-response+json`` when the client accepts it, else ``application/json``.

    A client that names neither (or no Accept at all) gets ``application/json``, as the
    specification allows for clients from before the new media type.
    """
    if not accept:
        return JSON
    best, best_q = JSON, 0.0
    for item in accept.split(","):
        media, _, params = item.partition(";")
        media = media.strip().lower()
        if media not in (GRAPHQL_RESPONSE_JSON, JSON):
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        # Ties go to the newer media type.
        if q > best_q or (q == best_q and q > 0 and media == GRAPHQL_RESPONSE_JSON):
            best, best_q = media, q
    return best


# A JSON string, escapes included; what is inside cannot open or close a level.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_LEVEL = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects nest deeper than ``limit``, found without parsing.

    Python's json recurses once per level and raises RecursionError near a thousand; the
    GraphQL layers after it recurse over the variables again. So the depth is bounded first.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_A_BRACKET)
    return max(accumulate(map(_LEVEL.__getitem__, brackets)), default=0) > limit


def read_json(text: bytes | str, what: str = "the body") -> object:
    raw = text.encode() if isinstance(text, str) else text
    if json_depth_exceeds(raw):
        raise Refusal(400, f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, bad UTF-8, huge numbers
        raise Refusal(400, f"{what} is not valid JSON: {error}") from error


def graphql_request(data: object) -> GraphQLRequestData:
    """The one operation of a request, or a Refusal saying what is wrong with it."""
    if isinstance(data, list):
        raise Refusal(400, "batched requests are not supported: send one operation per request")
    if not isinstance(data, dict):
        raise Refusal(400, "the request must be a JSON object with a `query`")
    query = data.get("query")
    if query is None:
        raise Refusal(400, "the request has no `query`")
    if not isinstance(query, str) or not query.strip():
        raise Refusal(400, "`query` must be a non-empty string")
    variables = data.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise Refusal(400, "`variables` must be an object")
    operation_name = data.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise Refusal(400, "`operationName` must be a string")
    extensions = data.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise Refusal(400, "`extensions` must be an object")
    return GraphQLRequestData(
        query=query, variables=variables, operation_name=operation_name, extensions=extensions
    )


def is_request_error(response: GraphQLHTTPResponse) -> bool:
    """Errors before execution (parse, validation, variable coercion, limits): no data, no paths.

    An execution error that nulls the whole result also leaves ``data`` null, but its errors
    have a path; that response is well-formed and keeps its ``data``. So does a timeout
    (DEADLINE_EXCEEDED, no path): the request was well-formed and ran out of time, a result
    with ``data: null`` and a 200 as the specification recommends, not a 400 that would tell
    the client its request was wrong.
    """
    errors = response.get("errors")
    return (
        response.get("data") is None
        and bool(errors)
        and all(isinstance(error, dict) and "path" not in error for error in errors or [])
        and not has_code(response, ErrorCode.DEADLINE_EXCEEDED)
    )


class CatalogGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWS
    graphql_ws_handler_class = LegacyWS

    def __init__(
        self,
        schema: CatalogSchema,
        database: Database,
        search: SearchBackend,
        settings: Settings,
        policy: EdgePolicy,
        authenticator: Authenticator,
        *,
        policies: Policies,
        cookies: SessionCookies | None = None,
        rates: RateLimits | None = None,
        hub: Hub | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if policy.graphiql else None,
            allow_queries_via_get=policy.get_queries,
        )
        self.database = database
        self.search = search
        self.settings = settings
        self.policy = policy
        self.authenticator = authenticator
        self.policies = policies
        self.cookies = cookies  # set when browser login is on: session cookies are read
        self.rates = rates or RateLimits(settings.limits)
        self.allowed_methods = "GET, POST" if policy.get_queries or policy.graphiql else "POST"
        self.hub = hub
        subscriptions = settings.subscriptions
        self.connections = Connections(subscriptions.connections_per_principal)
        self.connection_init_wait_timeout = timedelta(seconds=subscriptions.init_timeout_seconds)
        self.max_subscriptions_per_connection = subscriptions.per_connection
        self.allowed_origins = frozenset(settings.server.cors_origins)
        build = hashlib.sha256(f"{__version__}\n{schema.as_str()}".encode()).hexdigest()
        self.cache = ResponseCache(settings.cache, build) if settings.cache.enabled else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # Authenticated at connection_init (api/websocket.py); strawberry refuses a
            # handshake from a page of another origin (allowed_origins), so the session cookie
            # cannot be ridden from another site.
            websocket = WebSocket(scope, receive, send)
            caller = WebSocketCaller(
                self.authenticator,
                self.policies,
                self.connections,
                header=websocket.headers.get("authorization"),
                session=self.session(websocket),
                recheck_seconds=self.settings.subscriptions.recheck_seconds,
            )
            scope.setdefault("state", {})["caller"] = caller
            try:
                await super().__call__(scope, receive, send)
            finally:
                caller.close()
            return
        request = Request(scope, receive)
        try:
            # The GraphiQL page holds no data; everything else runs as an authenticated caller.
            if self.should_render_graphql_ide(self.request_adapter_class(request)):
                response = await self.run(request)
            else:
                principal = await self.authenticate(request)
                scope.setdefault("state", {})["principal"] = principal
                response = await self.answer(request, principal)
        except Refusal as refusal:
            response = self.refuse(request, refusal)
        except HTTPException as error:
            response = self.refuse(request, self.refusal_from(error))
        except ClientDisconnect:
            return  # gone before its body arrived: no one to answer, nothing began
        await response(scope, receive, send)

    async def answer(self, request: Request, principal: Principal) -> Response:
        """The operation's answer: from the response cache (api/cache.py) when it holds one for
        this request, else run (and kept when it may be)."""
        cache = self.cache
        if cache is None or request.method not in ("GET", "POST"):
            return await self.run(request)
        data = await self.parse_http_body(self.request_adapter_class(request))
        # The access the key names is the one the operation runs with (get_context), even if
        # the policy is reloaded meanwhile.
        access = access_of(self.policies.current, principal)
        request.scope["state"]["access"] = access
        key = cache.key(access.fingerprint, await self.database.journal_head(), data)
        accept = request.headers.get("accept")
        entry = cache.get(key)
        if entry is None:
            response = await self.run(request)
            context: Context | None = request.scope["state"].get("context")
            if not self.keep(key, response, context):
                return response
        else:
            refusal = self.rates.query(principal.subject, entry.cost)
            if refusal is not None:
                refused: GraphQLHTTPResponse = {"data": None, "errors": [rate_limit_error(refusal)]}
                return self.create_response(refused, await self.get_sub_response(request))
            record_cached(entry.operation)
            response = Response(entry.body, media_type=response_media_type(accept))
        # Of the bytes, not the key: an ETag that moved with the journal's head would show any
        # caller that someone wrote somewhere, in projects hidden from it too.
        etag = cache.etag(bytes(response.body), response_media_type(accept))
        if matches(request.headers.get("if-none-match"), etag):
            response = Response(status_code=304)
        # Private: an answer is one caller's. no-cache: a browser asks again each time, and
        # gets a body-less 304 while nothing changed.
        response.headers["ETag"] = etag
        response.headers["Cache-Control"] = "private, no-cache"
        return response

    def keep(self, key: bytes, response: Response, context: "Context | None") -> bool:
        """Keep a query's answer if nothing it read or erred with stops the key deciding it."""
        if self.cache is None or context is None or context.cost is None:
            return False  # refused or failed before its limits were checked, or no context
        execution = context.execution
        if response.status_code != 200 or execution is None or response.background is not None:
            return False
        try:
            if execution.operation_type is not OperationType.QUERY:
                return False
        except RuntimeError:  # no operation of that name
            return False
        if not keepable(context.reads, context.error_codes):
            return False
        entry = Entry(bytes(response.body), context.cost, execution.operation_name)
        return self.cache.put(key, entry)

    async def authenticate(self, request: Request) -> Principal:
        authorization = request.headers.get("authorization")
        try:
            principal = await self.authenticator.principal(authorization, self.session(request))
        except ProviderUnavailable as error:
            # The detail (the provider's internal address, the connection error) is for the log.
            log.warning("bearer token not checked: %s", error.message)
            message = "the identity provider cannot be reached: no token can be checked now"
            raise Refusal(503, message, ErrorCode.UNAUTHENTICATED) from None
        except Unauthenticated as error:
            # RFC 6750: a request without credentials gets the bare challenge.
            challenge = "Bearer" if authorization is None else 'Bearer error="invalid_token"'
            raise Refusal(
                401, error.message, ErrorCode.UNAUTHENTICATED, {"WWW-Authenticate": challenge}
            ) from None
        if (
            principal.method == Method.SESSION
            and request.method == "POST"
            and self.cookies is not None
            and not self.cookies.same_origin(request)
        ):
            # CSRF (api/cookies.py): the cookie rides any request the browser makes, so a POST
            # it carries must come from this server's pages or an allowlisted origin.
            raise Refusal(
                403,
                "a request authenticated by the session cookie must come from this server's"
                " pages or an origin in server.cors_origins (its Origin header)",
                ErrorCode.FORBIDDEN,
            )
        return principal

    def session(self, request: HTTPConnection) -> str | None:
        """The session cookie, read only when browser login is on."""
        return request.cookies.get(self.cookies.session) if self.cookies else None

    async def has_session(self, request: Request) -> bool:
        session = self.session(request)
        if session is None:
            return False
        try:
            await self.authenticator.principal(None, session)
        except Unauthenticated:
            return False
        return True

    def refusal_from(self, error: HTTPException) -> Refusal:
        """Strawberry's own refusals (plain text in its view) as coded ones."""
        if isinstance(error.__cause__, InvalidOperationTypeError):
            # GraphQL over HTTP: an operation the method may not carry (a mutation over GET).
            return Refusal(405, error.reason, headers={"Allow": "POST"})
        if error.status_code == 405:
            return Refusal(405, error.reason, headers={"Allow": self.allowed_methods})
        return Refusal(error.status_code, error.reason)

    def refuse(self, request: Request, refusal: Refusal) -> Response:
        return error_response(
            refusal.status,
            refusal.message,
            refusal.code,
            media_type=response_media_type(request.headers.get("accept")),
            headers=refusal.headers,
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        state = request.scope.setdefault("state", {})
        # Set for every request that runs an operation (__call__); the GraphiQL page runs none,
        # and a WebSocket's caller is known at its connection_init (on_ws_connect).
        principal: Principal | None = state.get("principal")
        access = state.get("access") or access_of(self.policies.current, principal)
        context = Context(
            hub=self.hub,
            subscriptions=self.settings.subscriptions,
            caller=state.get("caller"),
            database=self.database,
            actor=principal.subject if principal is not None else "anonymous",
            principal=principal,
            access=access,
            search=self.search,
            search_timeout=self.settings.search.timeout_seconds,
            operation_timeout=self.settings.limits.operation_timeout_seconds,
            max_cost=self.settings.limits.max_cost,
            rates=self.rates,
            request_id=state.get("request_id"),
            # Never read X-Forwarded-For here: uvicorn applies it only from trusted proxies.
            client_address=request.client.host if request.client else None,
            introspection=self.policy.introspection,
            webhooks=self.settings.webhooks,
        )
        if isinstance(request, Request):
            state["context"] = context  # for the response cache (answer), once it ran
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        if context.caller is None:
            raise ConnectionRejectionError()
        principal, access = await context.caller.connect(context.connection_params or {})
        context.act_as(access, principal)
        acknowledged: UnsetType = UNSET  # connection_ack without a payload
        return acknowledged

    def decode_json(self, data: str | bytes) -> object:
        # WebSocket messages (HTTP bodies are read by parse_http_body): bounded in size by
        # uvicorn's ws_max_size, in depth here. An error closes with 4400.
        raw = data.encode() if isinstance(data, str) else data
        if json_depth_exceeds(raw):
            raise json.JSONDecodeError(f"nests deeper than {MAX_JSON_DEPTH} levels", "", 0)
        return json.loads(raw)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = response_media_type(request.headers.get("accept"))
        return sub_response

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return self.policy.graphiql and super().should_render_graphql_ide(request)

    async def render_graphql_ide(self, request: Request) -> Response:
        login = self.cookies is not None and not await self.has_session(request)
        return HTMLResponse(
            graphiql.page(login_link=login), headers={"Content-Security-Policy": graphiql.PAGE_CSP}
        )

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        if request.method == "GET":
            if not self.policy.get_queries:
                raise Refusal(405, "queries over GET are off: POST them", headers={"Allow": "POST"})
            return graphql_request(self.query_parameters(request))
        content_type, params = parse_content_type(request.content_type or "")
        if content_type != JSON or params.get("charset", "utf-8").lower() != "utf-8":
            raise Refusal(415, "send the request as application/json (UTF-8)")
        return graphql_request(read_json(await request.get_body()))

    def query_parameters(self, request: AsyncHTTPRequestAdapter) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in ("query", "operationName", "variables", "extensions"):
            value = request.query_params.get(name)
            if isinstance(value, list):
                raise Refusal(400, f"`{name}` is given more than once")
            if name in ("variables", "extensions"):
                data[name] = read_json(value, f"`{name}`") if value else None
            else:
                data[name] = value
        return data

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media_type = sub_response.media_type or JSON
        status = 200
        if (
            media_type == GRAPHQL_RESPONSE_JSON
            and isinstance(response_data, dict)
            and is_request_error(response_data)
        ):
            response_data = response_data.copy()
            del response_data["data"]
            status = 500 if has_code(response_data, ErrorCode.INTERNAL) else 400
        wait = retry_after(response_data) if isinstance(response_data, dict) else None
        if wait is not None:
            status = 429
        response = Response(
            self.encode_json(response_data),
            status_code=sub_response.status_code or status,
            media_type=media_type,
        )
        if wait is not None:
            response.headers["Retry-After"] = str(wait)
        response.headers.raw.extend(sub_response.headers.raw)
        response.background = sub_response.background
        return response


def retry_after(response: GraphQLHTTPResponse) -> int | None:
    """The seconds to wait when every error of a response is RATE_LIMITED (the operation was
    refused whole, before it ran: a 429 with Retry-After), else None."""
    errors = response.get("errors") or []
    extensions = [e.get("extensions") or {} for e in errors if isinstance(e, dict)]
    if not errors or len(extensions) < len(errors):
        return None
    if any(x.get("code") != ErrorCode.RATE_LIMITED for x in extensions):
        return None
    return max(int(x.get("retryAfter") or 1) for x in extensions)


def has_code(response: GraphQLHTTPResponse, code: ErrorCode) -> bool:
    return any(
        isinstance(error, dict) and (error.get("extensions") or {}).get("code") == code
        for error in response.get("errors") or []
    )
