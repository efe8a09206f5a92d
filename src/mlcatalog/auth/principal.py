"""The authenticated caller, as every layer above sees it."""

from dataclasses import dataclass
from enum import StrEnum


class Method(StrEnum):
    """How a principal proved who it is."""

    BEARER = "bearer"  # a JWT from the configured OIDC provider
    DEVELOPMENT = "development"  # no provider configured: the local development user


@dataclass(frozen=True)
class Principal:
    subject: str
    method: Method
    name: str | None = None
    email: str | None = None
    groups: tuple[str, ...] = ()

    @classmethod
    def development(cls, name: str) -> "Principal":
        return cls(subject=name, method=Method.DEVELOPMENT, name=name)
