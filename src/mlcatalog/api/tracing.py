"""OpenTelemetry traces: a span per GraphQL request, SQL and search spans beneath it.

Imported only when a collector is configured (the `otel` extra), so a server without one
neither imports OpenTelemetry nor pays for it.
"""

import os
from collections.abc import Sequence
from typing import Any

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes
from starlette.types import Scope

from mlcatalog.api.observability import Operation
from mlcatalog.search.backend import SearchBackend
from mlcatalog.search.documents import Document, Key
from mlcatalog.search.request import SearchRequest, SearchResult
from mlcatalog.store.database import Database


class RequestsOnly(Sampler):
    """Start traces at requests only: the indexer's polls would otherwise send a trace of a
    few SQL statements every half second. Spans under a request follow the request."""

    def should_sample(
        self,
        parent_context: context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        decision = Decision.RECORD_AND_SAMPLE if kind == SpanKind.SERVER else Decision.DROP
        return SamplingResult(decision, attributes if kind == SpanKind.SERVER else None)

    def get_description(self) -> str:
        return "RequestsOnly"


class Tracing:
    def __init__(self, exporter: SpanExporter) -> None:
        attributes = {} if "OTEL_SERVICE_NAME" in os.environ else {"service.name": "mlcatalog"}
        self.provider = TracerProvider(
            resource=Resource.create(attributes), sampler=ParentBased(root=RequestsOnly())
        )
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("mlcatalog")
        self._engines: list[EngineTracer] = []

    @classmethod
    def to_collector(cls, endpoint: str | None) -> "Tracing":
        """Export over OTLP/HTTP to ``endpoint`` (the collector's base URL, as in
        OTEL_EXPORTER_OTLP_ENDPOINT), or where the standard variables say."""
        if endpoint is not None and not endpoint.rstrip("/").endswith("/v1/traces"):
            endpoint = endpoint.rstrip("/") + "/v1/traces"
        return cls(OTLPSpanExporter(endpoint=endpoint))

    def instrument_database(self, database: Database) -> None:
        """A span for each SQL statement, under the span of the request that ran it."""
        usage = metrics.get_meter("mlcatalog").create_up_down_counter("db.client.connections.usage")
        self._engines += [
            EngineTracer(self.tracer, engine, usage)  # type: ignore[no-untyped-call]
            for engine in database.sync_engines()
        ]

    def search(self, backend: SearchBackend) -> SearchBackend:
        return TracedSearch(backend, self.tracer)

    def start(self, scope: Scope) -> tuple[Span, object]:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        span = self.tracer.start_span(
            f"{scope['method']} {scope['path']}",
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": scope["method"], "url.path": scope["path"]},
        )
        return span, context.attach(trace.set_span_in_context(span))

    def finish(self, started: tuple[Span, object], operation: Operation, status: int) -> None:
        span, token = started
        context.detach(token)  # type: ignore[arg-type]
        if operation.executed:
            kind = operation.type or "GraphQL"
            span.update_name(f"{kind} {operation.name}" if operation.name else kind)
            span.set_attribute("graphql.operation.type", operation.type or "")
            span.set_attribute("graphql.operation.name", operation.name or "")
        if operation.codes:
            span.set_attribute("mlcatalog.error_codes", operation.codes)
        span.set_attribute("http.response.status_code", status)
        if status >= 500 or "INTERNAL" in operation.codes:
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def close(self) -> None:
        for engine in self._engines:
            engine.remove_all_event_listeners()  # type: ignore[no-untyped-call]
        self.provider.shutdown()


class TracedSearch:
    """A search backend whose searches and writes are spans."""

    def __init__(self, backend: SearchBackend, tracer: trace.Tracer) -> None:
        self.backend = backend
        self.tracer = tracer
        self.system = type(backend).__name__

    async def search(self, request: SearchRequest) -> SearchResult:
        with self.tracer.start_as_current_span(
            "search", kind=SpanKind.CLIENT, attributes={"mlcatalog.search.backend": self.system}
        ) as span:
            found = await self.backend.search(request)
            span.set_attribute("mlcatalog.search.total", found.total)
            return found

    async def write(
        self, documents: dict[Key, tuple[Document | None, int]], target: str | None = None
    ) -> int:
        with self.tracer.start_as_current_span(
            "search write",
            kind=SpanKind.CLIENT,
            attributes={"mlcatalog.search.backend": self.system, "documents": len(documents)},
        ):
            return await self.backend.write(documents, target)

    async def start_rebuild(self) -> str | None:
        return await self.backend.start_rebuild()

    async def finish_rebuild(self, target: str | None, seq: int) -> None:
        await self.backend.finish_rebuild(target, seq)

    async def stored_documents(self, keys: Sequence[Key]) -> dict[Key, Document | None]:
        return await self.backend.stored_documents(keys)

    async def stored_versions(self) -> dict[Key, int]:
        return await self.backend.stored_versions()

    async def refresh(self) -> None:
        await self.backend.refresh()

    async def close(self) -> None:
        await self.backend.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)
