"""What leaves the server on failure: a message for a person and a stable ``extensions.code``."""

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.relay.types import GlobalIDValueError

from mlcatalog.catalog.errors import CatalogError, ErrorCode
from mlcatalog.search.request import InvalidSearch, SearchUnavailable

log = logging.getLogger("mlcatalog.api")


def client_error(error: GraphQLError) -> GraphQLError:
    """Keep the message of expected errors, hide everything else behind INTERNAL."""
    original = error.original_error
    if isinstance(original, CatalogError):
        code, message = original.code, original.message
    elif original is None or isinstance(original, GraphQLError):
        # Parse, validation and variable errors (unknown field, bad enum value, NaN for a Float…).
        code, message = ErrorCode.INVALID_ARGUMENT, error.message
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
        log.error("internal error", exc_info=original)
        code, message = ErrorCode.INTERNAL, "internal error; it has been logged"
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": str(code)},
    )


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [client_error(error) for error in result.errors]
        pre = self.execution_context.pre_execution_errors
        if pre:
            self.execution_context.pre_execution_errors = [client_error(error) for error in pre]
