"""GraphQL over WebSocket (graphql-transport-ws, and the older graphql-ws): the caller,
authenticated at connection_init and checked again while its streams run, the connections each
principal holds, and handlers that close on a malformed frame instead of failing."""

import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import StreamResult
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.aio import aclosing

from mlcatalog.api.context import Context
from mlcatalog.api.errors import ErrorCoder
from mlcatalog.auth.access import Policies, Rights, access_of
from mlcatalog.auth.authenticate import Authenticator
from mlcatalog.auth.oidc import ProviderUnavailable, Unauthenticated
from mlcatalog.auth.principal import Principal
from mlcatalog.catalog.errors import CatalogError, ErrorCode

log = logging.getLogger("mlcatalog.auth")

MAX_OPERATION_ID = 128


class Connections:
    """The WebSockets each principal holds open in this process, up to a limit."""

    def __init__(self, per_principal: int) -> None:
        self.per_principal = per_principal
        self.open: Counter[str] = Counter()

    def take(self, subject: str) -> bool:
        if self.open[subject] >= self.per_principal:
            return False
        self.open[subject] += 1
        return True

    def release(self, subject: str) -> None:
        self.open[subject] -= 1
        if self.open[subject] <= 0:
            del self.open[subject]


class WebSocketCaller:
    """Who is on the other end of one WebSocket (the Context's ``Caller``)."""

    def __init__(
        self,
        authenticator: Authenticator,
        policies: Policies,
        connections: Connections,
        *,
        header: str | None,
        session: str | None,
        recheck_seconds: float,
    ) -> None:
        self.authenticator = authenticator
        self.policies = policies
        self.connections = connections
        self.authorization = header
        self.session = session
        self.recheck_seconds = recheck_seconds
        self.principal: Principal | None = None
        self.checked = 0.0

    async def connect(self, params: Mapping[str, Any]) -> tuple[Principal, Rights]:
        given = params.get("Authorization", params.get("authorization"))
        if given is not None:
            if not isinstance(given, str):
                raise _refused("Authorization must be a string")
            self.authorization = given
        try:
            principal = await self.authenticator.principal(self.authorization, self.session)
        except (Unauthenticated, ProviderUnavailable) as error:
            raise _refused(error.message) from None
        if not self.connections.take(principal.subject):
            limit = self.connections.per_principal
            raise _refused(f"{principal.subject} has {limit} WebSockets open here already")
        self.principal, self.checked = principal, time.monotonic()
        return principal, access_of(self.policies.current, principal)

    async def recheck(self) -> Rights:
        if self.principal is None:
            raise CatalogError(ErrorCode.UNAUTHENTICATED, "the connection is not initialised")
        if time.monotonic() - self.checked >= self.recheck_seconds:
            try:
                principal = await self.authenticator.principal(self.authorization, self.session)
            except Unauthenticated as error:
                raise CatalogError(
                    ErrorCode.UNAUTHENTICATED,
                    f"your credentials no longer authenticate ({error.message}): connect again"
                    " and resume from your last cursor",
                ) from None
            except ProviderUnavailable as error:
                # The provider's outage is not the caller's: keep serving, check again later.
                log.warning("a WebSocket's token not checked again: %s", error.message)
            else:
                self.principal = principal
            self.checked = time.monotonic()
        return access_of(self.policies.current, self.principal)

    def close(self) -> None:
        if self.principal is not None:
            self.connections.release(self.principal.subject)
            self.principal = None


def _refused(reason: str) -> ConnectionRejectionError:
    # The protocol's answer is a bare 4403 "Forbidden"; the reason is for the operator.
    log.info("WebSocket connection_init refused: %s", reason)
    return ConnectionRejectionError({"message": reason})


def frame_problem(message: object) -> str | None:
    """What is wrong with a message's shape, if anything (the handlers index it blindly)."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "a message must be a JSON object with a string type"
    if message["type"] not in ("subscribe", "start", "complete", "stop"):
        return None
    operation_id = message.get("id")
    if not isinstance(operation_id, str) or not 0 < len(operation_id) <= MAX_OPERATION_ID:
        return f"an operation id must be a string of 1 to {MAX_OPERATION_ID} characters"
    if message["type"] in ("complete", "stop"):
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "a subscribe payload must be an object with a string query"
    if not isinstance(payload.get("variables") or {}, dict):
        return "variables must be an object"
    if not isinstance(payload.get("operationName") or "", str):
        return "operationName must be a string"
    return None


class OverWebSocket:
    """What a WebSocket may run of the schema: subscriptions only (queries and mutations are
    POSTed, under the HTTP edge's deadline, limits and CSRF check), each operation with a context
    of its own (operations on one socket run concurrently, and a stream's rights change on their
    own), every error coded as ``CatalogSchema.execute`` codes them."""

    def __init__(self, schema: BaseSchema) -> None:
        self.schema = schema

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        if isinstance(context_value, Context):
            context_value = context_value.for_operation()
        results = await self.schema.stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            allowed_operation_types=(OperationType.SUBSCRIPTION,),
        )
        return _coded(results, ErrorCoder.for_context(context_value))

    async def subscribe(self, *args: Any, **kwargs: Any) -> StreamResult:
        """graphql-ws's entry point (stream's arguments but the operation types)."""
        return await self.stream(*args, **kwargs)


async def _coded(results: StreamResult, coder: ErrorCoder) -> StreamResult:
    try:
        async with aclosing(results):
            async for result in results:
                if isinstance(result, ExecutionResult) and result.errors and not _closes(result):
                    result.errors = coder([_over_websocket(error) for error in result.errors])
                yield result
    except GraphQLError as error:
        # A hook that raised (DocumentCache's parse of a syntax error): the operation's error,
        # not a task failure that would end it with a bare complete.
        yield PreExecutionError(data=None, errors=coder([error]))


def _closes(result: ExecutionResult) -> bool:
    """Errors the graphql-transport-ws handler answers by closing (4400): left as they are."""
    first = result.errors[0] if isinstance(result, PreExecutionError) and result.errors else None
    return isinstance(first, GraphQLSyntaxError) or (
        first is not None and isinstance(first.original_error, CannotGetOperationTypeError)
    )


def _over_websocket(error: GraphQLError) -> GraphQLError:
    if isinstance(error.original_error, InvalidOperationTypeError):
        message = "only subscriptions run over a WebSocket: POST queries and mutations to /graphql"
        return GraphQLError(message, extensions={"code": str(ErrorCode.INVALID_ARGUMENT)})
    return error


class TransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws: a malformed frame closes the connection with 4400."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = OverWebSocket(self.schema)  # type: ignore[assignment]  # stream is all it uses

    async def handle_message(self, message: Any) -> None:
        problem = frame_problem(message)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)


class LegacyWS(BaseGraphQLWSHandler[Context, None]):
    """graphql-ws (the older protocol): the same, where it would otherwise fail on a bad frame,
    and one connection_init per socket, as graphql-transport-ws has (each would take a place
    in Connections that the close releases once, or switch the socket's identity)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = OverWebSocket(self.schema)  # type: ignore[assignment]  # subscribe only
        self.initialised = False

    async def handle_message(self, message: Any) -> None:
        problem = frame_problem(message)
        if problem is not None:
            await self.websocket.close(code=4400, reason=problem)
            return
        if message["type"] == "connection_init":
            if self.initialised:
                await self.websocket.close(code=4429, reason="Too many initialisation requests")
                return
            self.initialised = True
        await super().handle_message(message)
