"""Catalog errors carry a stable code that the API returns as ``extensions.code``."""

from enum import StrEnum


class ErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    CONFLICT = "CONFLICT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    SEARCH_UNAVAILABLE = "SEARCH_UNAVAILABLE"
    RATE_LIMITED = "RATE_LIMITED"
    # An operation ran past its time limit: asking again unchanged fails again, unlike
    # RATE_LIMITED (wait and retry); unlike INTERNAL, no server fault (gRPC's name).
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    INTERNAL = "INTERNAL"


class CatalogError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(what: str) -> CatalogError:
    return CatalogError(ErrorCode.NOT_FOUND, f"{what} does not exist")


def invalid(message: str) -> CatalogError:
    return CatalogError(ErrorCode.INVALID_ARGUMENT, message)
