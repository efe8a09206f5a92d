"""The GraphQL schema: every family's queries and mutations merged into one root."""

import asyncio
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from mlcatalog.api.authorize import authorize
from mlcatalog.api.context import Context, EndRequestReads, HiddenSchema, KeepExecution
from mlcatalog.api.errors import ErrorCoder
from mlcatalog.api.limits import UTC_DATETIME, RequestLimits, cacheable
from mlcatalog.api.observability import record_operation
from mlcatalog.api.operations.approvals import ApprovalMutations, ApprovalQueries
from mlcatalog.api.operations.audit import AuditQueries
from mlcatalog.api.operations.datasets import DatasetMutations, DatasetQueries
from mlcatalog.api.operations.documents import DocumentMutations
from mlcatalog.api.operations.events import EventSubscriptions
from mlcatalog.api.operations.experiments import ExperimentMutations, ExperimentQueries
from mlcatalog.api.operations.lifecycle import LifecycleMutations
from mlcatalog.api.operations.lineage import LineageMutations, LineageQueries
from mlcatalog.api.operations.models import ModelMutations, ModelQueries
from mlcatalog.api.operations.projects import ProjectMutations, ProjectQueries
from mlcatalog.api.operations.search import SearchQueries
from mlcatalog.api.operations.tags import TagMutations
from mlcatalog.api.operations.versions import VersionMutations
from mlcatalog.api.operations.webhooks import WebhookMutations
from mlcatalog.api.types.ownership import is_entity, project_of, visible_only
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
        ApprovalQueries,
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
        LifecycleMutations,
        ApprovalMutations,
        WebhookMutations,
    ),
)
Subscription = merge_types("Subscription", (EventSubscriptions,))


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
        """Run an operation within the context's timeout (DEADLINE_EXCEEDED after it), then give
        every error its code (logging each INTERNAL one once, with the request id) and record
        the operation for the HTTP edge.

        Both happen here, once, because every way an operation ends passes here: a result, a
        hook that raised (ParserCache's parse of a syntax error: no extension's end of the
        operation resumes then), the deadline's cancellation, and the operations strawberry
        refuses by raising (no operation of that name, a mutation over GET).
        """
        context = context_value if isinstance(context_value, Context) else None
        timeout = None if context is None else context.operation_timeout
        try:
            async with asyncio.timeout(timeout) as deadline:
                if context is not None:
                    context.deadline = deadline  # lifted by a write about to commit
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
            if context is None:
                raise
            # Cancelled mid-way, the extensions did not close the request's reads.
            await context.loaders.reset()
            message = f"the operation did not finish within {timeout:g} s; ask for less"
            code = {"code": str(ErrorCode.DEADLINE_EXCEEDED)}
            result = ExecutionResult(data=None, errors=[GraphQLError(message, extensions=code)])
        except (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError):
            # The HTTP view refuses these with a 400 or 405 and INVALID_ARGUMENT.
            record_operation(_execution(context), operation_name, [str(ErrorCode.INVALID_ARGUMENT)])
            raise
        if result.errors:
            result.errors = ErrorCoder.for_context(context_value)(result.errors)
        codes = tuple(str((e.extensions or {}).get("code")) for e in result.errors or ())
        if context is not None:
            context.error_codes = codes
        record_operation(_execution(context), operation_name, codes)
        return result

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Nothing: ``execute`` codes every error, and logs what the server got wrong (INTERNAL)
        once with the request id; a client's mistakes are answered, not logged."""


def _execution(context: Context | None) -> ExecutionContext | None:
    return None if context is None else context.execution


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
        KeepExecution,  # first: its start runs before any hook can raise
        EndRequestReads,
        partial(DocumentCache, maxsize=1000),
        partial(ValidityCache, maxsize=1000),
        partial(AddValidationRules, rules),
        partial(MaxTokensLimiter, max_token_count=5000),
        HiddenSchema,
        RequestLimits,  # after validation (its on_execute hook): inputs and cost
    ]
    catalog = CatalogSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        scalar_overrides={datetime: UTC_DATETIME},
    )
    authorize(catalog._schema, project_of, visible_only, is_entity)
    return catalog


schema = create_schema()
