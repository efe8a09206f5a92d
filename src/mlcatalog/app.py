"""create_app(settings) → the Starlette application; the lifespan opens and closes the database."""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from mlcatalog.api import graphiql
from mlcatalog.api.cookies import SessionCookies
from mlcatalog.api.http import CatalogGraphQL, EdgePolicy
from mlcatalog.api.login import BrowserLogin
from mlcatalog.api.middleware import BodyLimit, RequestId, SecurityHeaders
from mlcatalog.api.observability import Observe, Telemetry
from mlcatalog.api.rates import RateLimits
from mlcatalog.api.schema import schema
from mlcatalog.auth.access import Policies, PolicyFiles
from mlcatalog.auth.authenticate import Authenticator, WithSessions, authenticator_for
from mlcatalog.catalog.journal import record_policy
from mlcatalog.events import webhooks
from mlcatalog.events.hub import Hub
from mlcatalog.events.webhooks import WebhookWorker
from mlcatalog.search.backend import open_backend
from mlcatalog.search.indexer import Indexer, run_forever
from mlcatalog.settings import Settings
from mlcatalog.store import migrate
from mlcatalog.store.database import Database, Origin


class NotMigrated(RuntimeError):
    pass


def create_app(
    settings: Settings | None = None,
    *,
    authenticator: Authenticator | None = None,
    rates: RateLimits | None = None,
) -> Starlette:
    """The application; ``authenticator`` and ``rates`` (its clock) replace the ones the
    settings make (tests)."""
    settings = settings or Settings()
    # Production without an identity provider refuses to start (NoIssuerInProduction) before
    # anything connects: creating the engines opens no connection.
    database = Database(settings.database_url, echo=settings.database_echo)
    authenticator = authenticator or authenticator_for(settings, database)
    policies = Policies(PolicyFiles.in_directory(settings.auth.policy_dir))
    search, checkpoint = open_backend(settings.search, database)
    telemetry = Telemetry(settings, database, checkpoint)
    search = telemetry.search(search)
    subscriptions = settings.subscriptions
    hub = Hub(database, batch=subscriptions.batch, poll_seconds=subscriptions.poll_seconds)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # Everything opened above is closed however the lifespan ends, a failed start included
        # (an unmigrated database): last opened, first closed.
        async with AsyncExitStack() as resources:
            resources.callback(telemetry.close)
            resources.push_async_callback(database.dispose)
            resources.push_async_callback(authenticator.close)
            resources.push_async_callback(search.close)
            if not await migrate.is_up_to_date(database):
                raise NotMigrated("the database is not migrated: run `mlcatalog migrate` first")
            authenticator.announce()
            stop = asyncio.Event()
            if settings.search.serve_indexer:
                indexer = Indexer(database, search, name=checkpoint)
                indexing = asyncio.create_task(
                    run_forever(indexer, poll_seconds=settings.search.poll_seconds, stop=stop)
                )
                resources.push_async_callback(_stopped, stop, indexing)
            if settings.webhooks.serve_worker:
                worker = WebhookWorker(database, settings.webhooks)
                resources.push_async_callback(worker.close)
                delivering = asyncio.create_task(webhooks.run_forever(worker, stop=stop))
                resources.push_async_callback(_stopped, stop, delivering)
            watching = asyncio.create_task(watch_policy(policies, database, stop))
            resources.push_async_callback(_stopped, stop, watching)
            tailing = asyncio.create_task(hub.run(stop))
            resources.push_async_callback(_stopped, stop, tailing)
            yield

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(_: Request) -> Response:
        try:
            await database.ping()
        except Exception as error:  # any failure to reach the database means not ready
            return JSONResponse({"status": "unavailable", "reason": type(error).__name__}, 503)
        return JSONResponse({"status": "ready"})

    policy = EdgePolicy.from_settings(settings)
    login, cookies = None, None
    if isinstance(authenticator, WithSessions):
        cookies = SessionCookies.from_settings(settings)
        login = BrowserLogin(authenticator, cookies, settings.auth.redirect_url)
    graphql = CatalogGraphQL(
        schema,
        database,
        search,
        settings,
        policy,
        authenticator,
        cookies=cookies,
        rates=rates,
        policies=policies,
        hub=hub,
    )
    routes: list[BaseRoute] = [
        # Every method reaches the view, so a wrong one gets a coded 405 too.
        Route("/graphql", graphql),
        # Subscriptions (api/websocket.py); without this route every handshake was refused.
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        *telemetry.routes(),
        *(login.routes() if login is not None else []),
    ]
    if policy.graphiql:
        routes.append(Mount(f"/{graphiql.ASSETS_PATH}", graphiql.assets()))
    middleware = [
        # Outermost first. Observe times everything within, and reads the request id that
        # RequestId leaves in the scope; even RequestId's answer to an unhandled error gets
        # the security headers.
        Middleware(Observe, telemetry=telemetry),
        Middleware(SecurityHeaders, hsts=policy.production),
        Middleware(RequestId),
        Middleware(BodyLimit, limit=settings.server.max_body_bytes),
    ]
    if settings.server.cors_origins:
        # Listed origins only, each named back exactly (never "*"), so a page elsewhere can
        # neither read answers nor send the cookie with a preflighted request.
        cors = Middleware(
            CORSMiddleware,
            allow_origins=settings.server.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "If-None-Match"],
            expose_headers=["X-Request-ID", "ETag"],
            max_age=600,
        )
        middleware.insert(3, cors)
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.database = database
    return app


async def watch_policy(policies: Policies, database: Database, stop: asyncio.Event) -> None:
    """Load the policy again when its files change, and journal each new one."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=policies.check_seconds)
        policy = policies.reload_if_changed()
        if policy is not None:
            origin = Origin(actor="policy", client_address=f"pid:{os.getpid()}")
            await record_policy(database, origin, sha256=policy.digest, lines=policy.lines)


async def _stopped(stop: asyncio.Event, task: "asyncio.Task[None]") -> None:
    stop.set()
    await task


def app_from_env() -> Starlette:
    """The factory uvicorn imports in each worker process."""
    return create_app(Settings())
