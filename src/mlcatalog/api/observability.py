"""What the server tells its operators: one JSON access line per request, Prometheus metrics
at /metrics, and OpenTelemetry traces when a collector is configured (api/tracing.py)."""

import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.types import ExecutionContext

from mlcatalog.search import indexer
from mlcatalog.search.backend import SearchBackend
from mlcatalog.settings import Settings
from mlcatalog.store.database import Database

if TYPE_CHECKING:  # imported only when a collector is configured
    from mlcatalog.api.tracing import Tracing

access_log = logging.getLogger("mlcatalog.access")

REQUESTS = Counter(
    "mlcatalog_graphql_requests_total",
    "GraphQL requests by operation name and outcome: OK, or the first error's code.",
    ["operation", "code"],
)
LATENCY = Histogram(
    "mlcatalog_graphql_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by operation name.",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Probes and scrapes come every few seconds from the infrastructure: neither logged nor counted.
QUIET = frozenset({"/healthz", "/readyz", "/metrics"})
# A name that is safe as a label value; the GraphQL grammar allows any length, labels should not.
SAFE_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")


@dataclass(slots=True)
class Operation:
    """What the schema learnt about the request's operation, for the edge to report."""

    executed: bool = False
    name: str | None = None
    type: str | None = None
    codes: list[str] = field(default_factory=list)


CURRENT: ContextVar[Operation | None] = ContextVar("mlcatalog_operation", default=None)


def record_operation(
    execution: ExecutionContext | None, name: str | None, codes: Iterable[str]
) -> None:
    """Tell the HTTP edge the operation's name and type (from its document when it parsed) and
    its distinct error codes, first first; a no-op outside a request (no ``Observe``)."""
    operation = CURRENT.get()
    if operation is None:
        return
    operation.executed = True
    operation.name = name if execution is None else execution.operation_name
    if execution is not None and execution.graphql_document is not None:
        # RuntimeError: the document has no operation of that name.
        with contextlib.suppress(RuntimeError):
            operation.type = execution.operation_type.value
    for code in codes:
        if code not in operation.codes:
            operation.codes.append(code)


def record_cached(name: str | None) -> None:
    """Tell the HTTP edge of a query answered from the response cache (api/cache.py)."""
    operation = CURRENT.get()
    if operation is not None:
        operation.executed, operation.name, operation.type = True, name, "query"


class OperationNames:
    """Operation names as label values: clients choose them, so only names of the GraphQL
    grammar up to 64 characters, and at most ``limit`` distinct ones per process, become labels;
    the rest are "other"."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def label(self, operation: Operation) -> str:
        name = operation.name
        if not operation.executed:
            return "none"  # refused before GraphQL: a body too large, not JSON, a browser's GET
        if name is None:
            return "anonymous"
        if name in self.seen:
            return name
        if len(self.seen) >= self.limit or SAFE_NAME.fullmatch(name) is None:
            return "other"
        self.seen.add(name)
        return name


def outcome(operation: Operation, status: int) -> str:
    if operation.codes:
        return operation.codes[0]
    if status >= 500:
        return "INTERNAL"
    return "OK" if status < 400 else "INVALID_ARGUMENT"


class LagCollector(Collector):
    """The indexer's lag as last read by a scrape (None: the database did not answer)."""

    def __init__(self) -> None:
        self.entries: int | None = None

    def collect(self) -> Iterable[Metric]:
        if self.entries is not None:
            yield GaugeMetricFamily(
                "mlcatalog_indexer_lag_entries",
                "Journal entries the search index is behind the journal's head.",
                value=self.entries,
            )


class Telemetry:
    """Everything observability needs, set up once per application from the settings."""

    def __init__(self, settings: Settings, database: Database, checkpoint: str) -> None:
        self.database = database
        self.checkpoint = checkpoint
        self.access_log = settings.server.access_log is True
        self.metrics = settings.telemetry.metrics
        self.names = OperationNames(settings.telemetry.max_operation_names)
        self.lag = LagCollector()
        self.own = CollectorRegistry(auto_describe=True)
        self.own.register(self.lag)
        self.tracing: Tracing | None = None
        endpoint = settings.telemetry.otlp_endpoint
        if endpoint or any(name in os.environ for name in STANDARD_ENDPOINTS):
            from mlcatalog.api import tracing  # OpenTelemetry only when it is used

            self.tracing = tracing.Tracing.to_collector(endpoint)
            self.tracing.instrument_database(database)
        if self.access_log:
            _route_access_log()
        self._requests: dict[tuple[str, str], Any] = {}
        self._latency: dict[str, Any] = {}

    def search(self, backend: SearchBackend) -> SearchBackend:
        """The backend, traced when traces are on."""
        return backend if self.tracing is None else self.tracing.search(backend)

    def routes(self) -> list[Route]:
        return [Route("/metrics", self.scrape)] if self.metrics else []

    def close(self) -> None:
        if self.tracing is not None:
            self.tracing.close()

    async def scrape(self, _: Request) -> Response:
        self.lag.entries = await indexer.lag(self.database, self.checkpoint)
        body = generate_latest(_process_registry()) + generate_latest(self.own)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    def observe(self, operation: Operation, status: int, seconds: float) -> None:
        name = self.names.label(operation)
        key = (name, outcome(operation, status))
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = REQUESTS.labels(*key)
        counter.inc()
        latency = self._latency.get(name)
        if latency is None:
            latency = self._latency[name] = LATENCY.labels(name)
        latency.observe(seconds)

    def log(self, scope: Scope, operation: Operation, status: int, seconds: float) -> None:
        state = scope.get("state") or {}
        if not access_log.isEnabledFor(logging.INFO):
            return
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": state.get("request_id") or os.urandom(8).hex(),
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "operation": operation.name[:64] if operation.name else None,
            "operation_type": operation.type,
            "error_codes": operation.codes,
            # Which worker answered (serve --workers N): how the connections spread.
            "pid": os.getpid(),
        }
        message = json.dumps(line, separators=(",", ":"), ensure_ascii=False)
        # Logger.info would look up its caller's file and line through the middleware's deep
        # stack on every request (a third of the line's cost); the line says where it is from.
        access_log.handle(
            access_log.makeRecord(access_log.name, logging.INFO, "", 0, message, (), None)
        )


STANDARD_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def _process_registry() -> CollectorRegistry:
    """This process's metrics, or every worker's under `serve --workers N` (multiprocess mode:
    the serve command points PROMETHEUS_MULTIPROC_DIR at a directory the workers share)."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def _route_access_log() -> None:
    """Let the access lines through: to the handlers logging was configured with, else to
    standard output one bare JSON object per line."""
    if access_log.level == logging.NOTSET:
        access_log.setLevel(logging.INFO)
    if not access_log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.propagate = False


class Observe:
    """The ASGI middleware that times, counts, logs and traces each HTTP request."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry
        self.active = telemetry.access_log or telemetry.metrics or telemetry.tracing is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.active or scope["path"] in QUIET:
            await self.app(scope, receive, send)
            return
        telemetry = self.telemetry
        started = time.perf_counter()
        # The request-id middleware stores its id here; the same dict whichever runs first.
        scope.setdefault("state", {})
        operation = Operation()
        token = CURRENT.set(operation)
        status = 500  # what the client gets when the application raises before answering
        span = None if telemetry.tracing is None else telemetry.tracing.start(scope)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            CURRENT.reset(token)
            seconds = time.perf_counter() - started
            if span is not None and telemetry.tracing is not None:
                telemetry.tracing.finish(span, operation, status)
            if telemetry.metrics and scope["path"] == "/graphql":
                telemetry.observe(operation, status, seconds)
            if telemetry.access_log:
                telemetry.log(scope, operation, status, seconds)
