"""The GraphQL schema: every family's queries and mutations merged into one root."""

import asyncio
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from mlcatalog.api.context import Context, EndRequestReads, HiddenSchema
from mlcatalog.api.errors import ErrorCoder, ErrorCodes
from mlcatalog.api.limits import UTC_DATETIME, RequestLimits, cacheable
from mlcatalog.api.observability import RecordOperation
from mlcatalog.api.operations.audit import AuditQueries
from mlcatalog.api.operations.datasets import DatasetMutations, DatasetQueries
from mlcatalog.api.operations.documents import DocumentMutations
from mlcatalog.api.operations.experiments import ExperimentMutations, ExperimentQueries
from mlcatalog.api.operations.lineage import LineageMutations, LineageQueries
from mlcatalog.api.operations.models import ModelMutations, ModelQueries
from mlcatalog.api.operations.projects import ProjectMutations, ProjectQueries
from mlcatalog.api.operations.search import SearchQueries
from mlcatalog.api.operations.tags import TagMutations
from mlcatalog.api.operations.versions import VersionMutations
from mlcatalog.catalog.errors import ErrorCode


@strawberry.type
class NodeQueries:
    node: relay.Node | None = relay.node(description="Any object by its global id.")


Query = merge_types(
    "Query",
    (
        NodeQueries,
        ProjectQueries,
        ModelQueries,
        DatasetQueries,
        ExperimentQueries,
        LineageQueries,
        AuditQueries,
        SearchQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        ProjectMutations,
        ModelMutations,
        VersionMutations,
        TagMutations,
        DatasetMutations,
        ExperimentMutations,
        LineageMutations,
        DocumentMutations,
    ),
)


class CatalogSchema(strawberry.Schema):
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Run an operation within the context's timeout (DEADLINE_EXCEEDED after it); every
        error carries a code, also those that never reach ErrorCodes.

        A hook that raises (ParserCache's parse of a document with a syntax error) ends the
        operation before the extensions' ``on_operation`` resumes, so its errors come back as
        strawberry made them.
        """
        timeout = context_value.operation_timeout if isinstance(context_value, Context) else None
        try:
            async with asyncio.timeout(timeout):
                result = await super().execute(
                    query,
                    variable_values,
                    context_value,
                    root_value,
                    operation_name,
                    allowed_operation_types,
                    operation_extensions,
                )
        except TimeoutError:
            if not isinstance(context_value, Context):
                raise
            # Cancelled mid-way, the extensions did not close the request's reads.
            await context_value.loaders.reset()
            message = f"the operation did not finish within {timeout:g} s; ask for less"
            code = {"code": str(ErrorCode.DEADLINE_EXCEEDED)}
            return ExecutionResult(data=None, errors=[GraphQLError(message, extensions=code)])
        if result.errors:
            result.errors = ErrorCoder.for_context(context_value)(result.errors)
        return result

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what the server got wrong; a client's mistakes are answered, not logged."""
        for error in errors:
            if (error.extensions or {}).get("code") == "INTERNAL":
                super().process_errors([error], execution_context)


class DocumentCache(ParserCache):
    """Parsed documents shared across requests, up to ``MAX_CACHED_QUERY`` characters each; a
    bigger document is parsed by strawberry after this hook, uncached."""

    def on_parse(self) -> Iterator[None]:
        if cacheable(self.execution_context.query):
            yield from super().on_parse()
        else:
            yield


class ValidityCache(ValidationCache):
    """Validation results shared across requests, for the documents ``DocumentCache`` keeps
    (the key holds the document); strawberry validates a bigger one after this hook, uncached,
    with the same rules."""

    def on_validate(self) -> Iterator[None]:
        if cacheable(self.execution_context.query):
            yield from super().on_validate()
        else:
            yield


def create_schema() -> CatalogSchema:
    # Strawberry calls each factory for every request and hands the instance that request's
    # execution context: an instance shared between requests would read another request's
    # document, rules or parse options as soon as a hook before them awaits. So every
    # extension is built per request, while what they share across requests is shared by
    # design: the parse and validation caches are module-level LRU caches keyed by maxsize, and
    # the limiters' rules (part of the validation cache's key) are built once here, so every
    # request's AddValidationRules adds the same classes and a known document still hits.
    # Documents over limits.MAX_CACHED_QUERY characters are not kept (DocumentCache).
    rules = [
        *QueryDepthLimiter(max_depth=12).validation_rules,
        *MaxAliasesLimiter(max_alias_count=30).validation_rules,
    ]
    extensions: list[Any] = [
        RecordOperation,  # first: its end of the operation runs last, after ErrorCodes'
        ErrorCodes,
        EndRequestReads,
        partial(DocumentCache, maxsize=1000),
        partial(ValidityCache, maxsize=1000),
        partial(AddValidationRules, rules),
        partial(MaxTokensLimiter, max_token_count=5000),
        HiddenSchema,
        RequestLimits,  # after validation (its on_execute hook): inputs and cost
    ]
    return CatalogSchema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        scalar_overrides={datetime: UTC_DATETIME},
    )


schema = create_schema()
