"""create_app(settings) → the Starlette application; the lifespan opens and closes the database."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from mlcatalog.api.context import Context
from mlcatalog.api.observability import Observe, Telemetry
from mlcatalog.api.schema import schema
from mlcatalog.search.backend import SearchBackend, open_backend
from mlcatalog.search.indexer import Indexer, run_forever
from mlcatalog.settings import Settings
from mlcatalog.store import migrate
from mlcatalog.store.database import Database


class NotMigrated(RuntimeError):
    pass


class CatalogGraphQL(GraphQL[Context, None]):
    def __init__(self, database: Database, search: SearchBackend, settings: Settings) -> None:
        super().__init__(schema, graphql_ide="graphiql")
        self.database = database
        self.search = search
        self.settings = settings

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(
            database=self.database,
            actor=self.settings.auth.dev_user,
            search=self.search,
            search_timeout=self.settings.search.timeout_seconds,
        )


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
        body = {
            "errors": [
                {
                    "message": f"the request body is larger than {self.limit} bytes",
                    "extensions": {"code": "INVALID_ARGUMENT"},
                }
            ]
        }
        await JSONResponse(body, status_code=413)(scope, receive, send)


class TooLarge(Exception):
    pass


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    database = Database(settings.database_url, echo=settings.database_echo)
    search, checkpoint = open_backend(settings.search, database)
    telemetry = Telemetry(settings, database, checkpoint)
    search = telemetry.search(search)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if not await migrate.is_up_to_date(database):
            await database.dispose()
            raise NotMigrated("the database is not migrated: run `mlcatalog migrate` first")
        stop = asyncio.Event()
        indexing = None
        if settings.search.serve_indexer:
            indexer = Indexer(database, search, name=checkpoint)
            indexing = asyncio.create_task(
                run_forever(indexer, poll_seconds=settings.search.poll_seconds, stop=stop)
            )
        yield
        stop.set()
        if indexing is not None:
            await indexing
        await search.close()
        await database.dispose()
        telemetry.close()

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(_: Request) -> Response:
        try:
            await database.ping()
        except Exception as error:  # any failure to reach the database means not ready
            return JSONResponse({"status": "unavailable", "reason": type(error).__name__}, 503)
        return JSONResponse({"status": "ready"})

    graphql = CatalogGraphQL(database, search, settings)
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *telemetry.routes(),
        ],
        lifespan=lifespan,
    )
    app.state.database = database
    app.add_middleware(BodyLimit, limit=settings.server.max_body_bytes)
    app.add_middleware(Observe, telemetry=telemetry)  # outermost: it times the limits too
    return app


def app_from_env() -> Starlette:
    """The factory uvicorn imports in each worker process."""
    return create_app(Settings())
