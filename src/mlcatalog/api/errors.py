"""What leaves the server on failure: a message for a person and a stable ``extensions.code``."""

import logging
import re

from graphql import GraphQLError
from strawberry.relay.types import GlobalIDValueError

from mlcatalog.catalog.errors import CatalogError, ErrorCode
from mlcatalog.search.request import InvalidSearch, SearchUnavailable

log = logging.getLogger("mlcatalog.api")

# graphql-core ends validation and coercion messages with " Did you mean 'x', 'y', or 'z'?".
_SUGGESTION = re.compile(r" Did you mean .*\?$", re.DOTALL)


def client_error(
    error: GraphQLError, *, request_id: str | None = None, hide_suggestions: bool = False
) -> GraphQLError:
    """Keep the message of expected errors, hide everything else behind INTERNAL (logged once)."""
    original = error.original_error
    extensions: dict[str, object] = {}
    if isinstance(original, CatalogError):
        code, message = original.code, original.message
    elif original is None or isinstance(original, GraphQLError):
        # Parse, validation and variable errors (unknown field, bad enum value, NaN for a Float…).
        code, message = ErrorCode.INVALID_ARGUMENT, error.message
        if hide_suggestions:
            message = _SUGGESTION.sub("", message)
    elif isinstance(original, InvalidSearch):
        code, message = ErrorCode.INVALID_ARGUMENT, str(original)
    elif isinstance(original, SearchUnavailable):
        code, message = ErrorCode.SEARCH_UNAVAILABLE, f"search is unavailable: {original}"
    elif isinstance(original, GlobalIDValueError):
        code, message = (
            ErrorCode.INVALID_ARGUMENT,
            "not a valid id: ids are the opaque ids the API returns",
        )
    else:
        log.error(
            "internal error (request %s)",
            request_id,
            exc_info=original,
            extra={"request_id": request_id},
        )
        code, message = ErrorCode.INTERNAL, "internal error; it has been logged"
        if request_id is not None:
            extensions["requestId"] = request_id
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": str(code), **extensions},
    )


def is_coded(error: GraphQLError) -> bool:
    return bool(error.extensions and "code" in error.extensions)


class ErrorCoder:
    """Codes each error once (an error listed twice is logged once): CatalogSchema.execute
    runs one over every operation's errors, whichever way the operation ended."""

    def __init__(self, *, request_id: str | None, hide_suggestions: bool) -> None:
        self.request_id = request_id
        self.hide_suggestions = hide_suggestions
        self.done: dict[int, GraphQLError] = {}

    @classmethod
    def for_context(cls, context: object) -> "ErrorCoder":
        """From the request's context (any object: tests may run the schema without one)."""
        return cls(
            request_id=getattr(context, "request_id", None),
            # "Did you mean …?" would spell out the names of a schema kept hidden.
            hide_suggestions=not getattr(context, "introspection", True),
        )

    def __call__(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self.one(error) for error in errors]

    def one(self, error: GraphQLError) -> GraphQLError:
        if is_coded(error):
            return error
        if id(error) not in self.done:
            self.done[id(error)] = client_error(
                error, request_id=self.request_id, hide_suggestions=self.hide_suggestions
            )
        return self.done[id(error)]
