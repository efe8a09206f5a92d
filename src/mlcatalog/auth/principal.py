"""The authenticated caller, as every layer above sees it."""

from dataclasses import dataclass
from enum import StrEnum


class Method(StrEnum):
    """How a principal proved who it is."""

    BEARER = "bearer"  # a JWT from the configured OIDC provider
    DEVELOPMENT = "development"  # no provider configured: the local development user
    API_TOKEN = "api-token"  # an API token made by `mlcatalog tokens create`
    OS_ACCOUNT = "os-account"  # the command line: the account that runs the process
    SESSION = "session"  # a browser's session cookie, after a login at the provider


@dataclass(frozen=True)
class TokenGrant:
    """What an API token was created for: authorization reads the project and role."""

    name: str
    project: str
    role: str


@dataclass(frozen=True)
class Principal:
    subject: str
    method: Method
    name: str | None = None
    email: str | None = None
    groups: tuple[str, ...] = ()
    token: TokenGrant | None = None  # set when the principal authenticated with an API token

    @classmethod
    def development(cls, name: str) -> "Principal":
        return cls(subject=name, method=Method.DEVELOPMENT, name=name)
