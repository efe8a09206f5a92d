"""Settings read from the environment (prefix ``MLCATALOG_``), one nested model per concern."""

from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # One JSON line per request on the "mlcatalog.access" logger (uvicorn's own access log stays
    # off: it halves a small endpoint's throughput). None: on in production, off elsewhere.
    access_log: bool | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    # Unset (None), each of these is on in development and test and off in production.
    # Introspection also decides whether validation errors suggest names ("Did you mean …?"):
    # with the schema hidden, its names should not leak through error messages either.
    graphiql: bool | None = None
    introspection: bool | None = None
    # Queries (never mutations) over GET, for links and HTTP caches.
    get_queries: bool | None = None


class AuthSettings(BaseModel):
    # Until the login issue lands, every request acts as this local development user.
    dev_user: str = "local-dev"


class SearchSettings(BaseModel):
    # With no URL, search is answered by the embedded backend in the catalog's own database.
    opensearch_url: str | None = None
    timeout_seconds: float = 2.0
    # Connections to OpenSearch per process: at least the searches a process serves at once.
    # Callers beyond it wait for a connection, and a waiter can lose every race to callers that
    # release and take one again (seen as 10 s tails at 16 callers with the client's default 10).
    connections: int = 64
    # API replicas behind a dedicated `mlcatalog indexer` turn this off.
    serve_indexer: bool = True
    poll_seconds: float = 0.5


class LimitsSettings(BaseModel):
    # Every GraphQL operation; a search's own limit is search.timeout_seconds.
    operation_timeout_seconds: float = 10.0
    # The most objects one query may resolve (docs/architecture.md, "Limits"). A query's time, and
    # how long it can hold its worker's event loop, grow with it: lower it to bound both.
    max_cost: int = Field(default=50_000, ge=1)


class TelemetrySettings(BaseModel):
    # Prometheus metrics at GET /metrics.
    metrics: bool = True
    # Operation names come from clients: at most this many distinct ones become metric labels
    # per process, the rest count as "other".
    max_operation_names: int = 100
    # Traces go to this OTLP/HTTP collector ("http://collector:4318"; needs the `otel` extra).
    # Without it, OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used;
    # with none of the three, nothing of OpenTelemetry is imported.
    otlp_endpoint: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MLCATALOG_", env_nested_delimiter="__", extra="ignore"
    )

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = Field(
        default="sqlite+aiosqlite:///./mlcatalog.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://…",
    )
    database_echo: bool = False
    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    search: SearchSettings = SearchSettings()
    limits: LimitsSettings = LimitsSettings()
    telemetry: TelemetrySettings = TelemetrySettings()

    @model_validator(mode="after")
    def _environment_defaults(self) -> "Settings":
        if self.server.access_log is None:
            self.server.access_log = self.environment == "production"
        return self
