"""The GraphQL schema: every family's queries and mutations merged into one root."""

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from mlcatalog.api.context import EndRequestReads
from mlcatalog.api.errors import ErrorCodes
from mlcatalog.api.observability import RecordOperation
from mlcatalog.api.operations.audit import AuditQueries
from mlcatalog.api.operations.datasets import DatasetMutations, DatasetQueries
from mlcatalog.api.operations.documents import DocumentMutations
from mlcatalog.api.operations.experiments import ExperimentMutations, ExperimentQueries
from mlcatalog.api.operations.lineage import LineageMutations, LineageQueries
from mlcatalog.api.operations.models import ModelMutations, ModelQueries
from mlcatalog.api.operations.search import SearchQueries


@strawberry.type
class NodeQueries:
    node: relay.Node | None = relay.node(description="Any object by its global id.")


Query = merge_types(
    "Query",
    (
        NodeQueries,
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
    (ModelMutations, DatasetMutations, ExperimentMutations, LineageMutations, DocumentMutations),
)


class CatalogSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what the server got wrong; a client's mistakes are answered, not logged."""
        for error in errors:
            if (error.extensions or {}).get("code") == "INTERNAL":
                super().process_errors([error], execution_context)


def create_schema() -> strawberry.Schema:
    # Parsing and validating cost more than small queries' resolvers: cache both across requests.
    # The limiters add validation rules, which are part of the validation cache's key: they are
    # built once too, or every request would miss the cache.
    shared = [
        ParserCache(maxsize=1000),
        ValidationCache(maxsize=1000),
        QueryDepthLimiter(max_depth=12),
        MaxAliasesLimiter(max_alias_count=30),
        MaxTokensLimiter(max_token_count=5000),
    ]
    extensions: list[Any] = [
        RecordOperation,  # first: its end of the operation runs last, after ErrorCodes'
        ErrorCodes,
        EndRequestReads,
        *(lambda e=e: e for e in shared),
    ]
    return CatalogSchema(query=Query, mutation=Mutation, extensions=extensions)


schema = create_schema()
