"""Settings read from the environment (prefix ``MLCATALOG_``), one nested model per concern."""

import ipaddress
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
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
    # Browser origins ("https://dashboards.example.org") that may call the API with the session
    # cookie (CORS with credentials) and whose POSTs pass the CSRF check. Empty: same origin only.
    # JSON in the environment: MLCATALOG_SERVER__CORS_ORIGINS='["https://dash.example.org"]'.
    cors_origins: list[str] = Field(default=[], max_length=100)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            # An exact origin: a wildcard with credentials would let every site act as the user.
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"server.cors_origins: {origin[:100]!r} is not an origin"
                    " (scheme://host[:port], no path, no wildcard)"
                )
        return origins


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


# Asymmetric signatures only: `none` proves nothing, and an HMAC "key" made from a provider's
# public key is known to everyone (the algorithm-confusion attack).
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class AuthSettings(BaseModel):
    # With no issuer (and not in production) every request acts as this local development user.
    dev_user: str = "local-dev"
    # The OIDC provider, exactly as its tokens name it in `iss`; its discovery document is at
    # <issuer>/.well-known/openid-configuration. Set, every GraphQL request needs a bearer token.
    issuer: str | None = None
    # What the tokens must name in `aud`: this API's client id or audience at the provider.
    audience: str | None = None
    # A token for several audiences that names the client it was issued to (`azp`) must name
    # the audience above or one of these client ids (OpenID Connect Core 3.1.3.7): e.g. a
    # dashboard's client whose tokens also list other APIs. JSON in the environment.
    authorized_parties: tuple[str, ...] = Field(default=(), max_length=100)
    # JSON in the environment: MLCATALOG_AUTH__ALGORITHMS='["RS256"]'.
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    # Clock skew allowed for exp and nbf.
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    # A token signed by a key id the cached JWKS lacks fetches the JWKS again (the provider
    # rotated its keys), but not more often than this: unknown key ids cannot flood the provider.
    jwks_refetch_seconds: float = Field(default=60.0, ge=0)
    http_timeout_seconds: float = 5.0
    # model.conf and policy.csv (Casbin): who may read and change what. Edits apply without a
    # restart, within about a second.
    policy_dir: Path = Path("policies")
    # Keep a claim the user cannot change (`sub`, Entra ID's `oid`): `email` is accepted only
    # with `email_verified` true, since many providers let a user edit their address.
    subject_claim: str = "sub"
    name_claim: str = "name"
    email_claim: str = "email"
    groups_claim: str = "groups"
    # API tokens (`mlcatalog tokens create`): their lifetime unless --expires-in-days says
    # otherwise, and the longest one may ask for. Every token expires.
    token_days: int = Field(default=90, ge=1)
    token_max_days: int = Field(default=365, ge=1)
    # Browser login (authorization code with PKCE at /auth/login), on when issuer and client_id
    # are set: this app's client at the provider, whose ID tokens name it in `aud`.
    client_id: str | None = None
    client_secret: SecretStr | None = None  # None: a public client (PKCE alone)
    # Where the provider sends the browser back: <public URL>/auth/callback, registered at the
    # provider. Unset, it is derived from each request (behind a proxy: uvicorn --proxy-headers).
    # Its origin is also the server's own origin for the CSRF check.
    redirect_url: str | None = None
    login_scopes: tuple[str, ...] = ("openid", "profile", "email")
    # Sessions end this long after login, used or not.
    session_hours: float = Field(default=8.0, gt=0, le=24 * 30)
    # False only for plain-http development: the cookie loses Secure and its __Host- prefix.
    cookie_secure: bool = True

    @property
    def browser_login(self) -> bool:
        return self.issuer is not None and self.client_id is not None

    @model_validator(mode="after")
    def _safe_algorithms(self) -> "AuthSettings":
        refused = sorted(set(self.algorithms) - SIGNING_ALGORITHMS)
        if refused or not self.algorithms:
            raise ValueError(
                f"auth.algorithms: {refused or 'none given'} refused; use asymmetric signature "
                f"algorithms only ({', '.join(sorted(SIGNING_ALGORITHMS))})"
            )
        if self.issuer is not None and not self.audience:
            raise ValueError(
                "auth.audience must be set with auth.issuer (MLCATALOG_AUTH__AUDIENCE)"
            )
        if self.token_days > self.token_max_days:
            raise ValueError("auth.token_days may not exceed auth.token_max_days")
        if self.client_id is not None and self.issuer is None:
            raise ValueError("auth.client_id needs auth.issuer (MLCATALOG_AUTH__ISSUER)")
        if self.redirect_url is not None:
            url = urlsplit(self.redirect_url)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise ValueError("auth.redirect_url must be an absolute http(s) URL")
        if "openid" not in self.login_scopes:
            raise ValueError("auth.login_scopes must include openid")
        return self


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
    # Per principal (its subject) and per process, so N workers allow N times as much
    # (docs/architecture.md, "Limits"); 0 turns a limit off. Each root field of a mutation
    # counts one.
    mutations_per_minute: int = Field(default=600, ge=0)
    # Queries whose cost (max_cost's measure) is over expensive_cost; cheaper ones are not limited.
    expensive_reads_per_minute: int = Field(default=120, ge=0)
    expensive_cost: int = Field(default=5_000, ge=0)
    # Subjects whose limits a process remembers, the least recently seen forgotten first.
    rate_limited_subjects: int = Field(default=10_000, ge=1)


class CacheSettings(BaseModel):
    # The response cache of GraphQL reads (api/cache.py; docs/architecture.md, "Response
    # cache"), per process. Off: every read runs, and no ETag is given.
    enabled: bool = True
    # The most responses kept, and the most bytes their bodies hold; the least recently used go.
    max_entries: int = Field(default=10_000, ge=1, le=1_000_000)
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # A bigger response is answered, not kept.
    max_entry_bytes: int = Field(default=1024 * 1024, ge=1024)


class SubscriptionSettings(BaseModel):
    # Live operations (catalogEvents) open at once on one WebSocket, and WebSockets open at once
    # per principal (its subject) in one process.
    per_connection: int = Field(default=10, ge=1)
    connections_per_principal: int = Field(default=20, ge=1)
    # Events waiting for a subscriber that reads slowly; past it the stream ends with an error
    # naming the cursor to resume from.
    queue_size: int = Field(default=1_000, ge=1)
    # Journal entries read per statement, replaying after a cursor and tailing the journal.
    batch: int = Field(default=500, ge=1, le=10_000)
    # How often an open stream checks that its token or session still authenticates (the policy
    # is checked at every batch).
    recheck_seconds: float = Field(default=10.0, gt=0)
    # The hub also reads the journal this often without a wake-up (a NOTIFY lost with its
    # connection is found then).
    poll_seconds: float = Field(default=5.0, gt=0)
    # The largest WebSocket message accepted (uvicorn closes the connection with 1009 past it).
    max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    # A WebSocket that sends no connection_init within this time is closed (4408).
    init_timeout_seconds: float = Field(default=10.0, gt=0)


class WebhookSettings(BaseModel):
    # API replicas behind a dedicated `mlcatalog webhooks run` turn this off.
    serve_worker: bool = True
    poll_seconds: float = Field(default=1.0, gt=0)
    # Networks outgoing deliveries may reach although they are loopback, private, link-local,
    # multicast or unspecified ("127.0.0.1/32" for a receiver on this host). Empty: none.
    allow_networks: list[str] = Field(default=[], max_length=100)
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # The whole attempt: connecting, sending, and reading the answer's head and capped body.
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_response_bytes: int = Field(default=64 * 1024, ge=0, le=1024 * 1024)
    # A hook is disabled (and that is journaled) after this many failed attempts in a row.
    max_failures: int = Field(default=10, ge=1, le=1000)
    # Retries wait base * 2^(failures-1), at most max, each with full jitter.
    backoff_seconds: float = Field(default=1.0, gt=0)
    max_backoff_seconds: float = Field(default=600.0, gt=0)
    # Hooks one process delivers to at once.
    concurrency: int = Field(default=8, ge=1, le=256)

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, networks: list[str]) -> list[str]:
        for network in networks:
            try:
                ipaddress.ip_network(network)
            except ValueError:
                raise ValueError(
                    f"webhooks.allow_networks: {network[:100]!r} is no network"
                ) from None
        return networks


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
    subscriptions: SubscriptionSettings = SubscriptionSettings()
    auth: AuthSettings = AuthSettings()
    search: SearchSettings = SearchSettings()
    limits: LimitsSettings = LimitsSettings()
    cache: CacheSettings = CacheSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    webhooks: WebhookSettings = WebhookSettings()

    @model_validator(mode="after")
    def _environment_defaults(self) -> "Settings":
        if self.server.access_log is None:
            self.server.access_log = self.environment == "production"
        if self.environment == "production" and not self.auth.cookie_secure:
            raise ValueError(
                "auth.cookie_secure=false is for plain-http development, not production"
            )
        return self
