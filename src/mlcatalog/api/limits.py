"""Every request bounded: the table of limits, the cost of a query, and the checks on its inputs.

``LIMITS`` is the one table, keyed by schema coordinate: an argument (``Query.lineage(depth)``),
an input field (``SearchInput.filters``) or an output list (``DatasetVersion.models``). What a
limit bounds depends on what the coordinate names:

- a list input: how many items it may hold; a String or ID input: how many characters;
  an Int input: its range. Anything not in the table gets the defaults below. Every Float
  input must be finite. Breaking one is INVALID_ARGUMENT, naming the argument's path and
  the maximum, before any resolver runs (so before any database work).
- a list output: how many items it holds at most (``capped`` truncates where it is built).

A query's cost is the number of objects it may resolve, at most: an object field costs 1 plus
its subtree, a connection's edges cost their page size (``first``, default ``DEFAULT_PAGE``)
times their subtree, a plain list of objects its cap times its subtree. Scalar and enum fields
(and lists of them) cost nothing: how many of them an object asks for is bounded by the size of
the document (the token limit), so only objects multiply (the rule Shopify's query cost uses).
Over ``MAX_COST`` is INVALID_ARGUMENT before execution. The same cost decides which queries
count against the caller's limit on expensive reads (``api/rates.py``), checked right after.

The cost needs the values of variables (``first: $n``), which a validation rule never sees
(and a rule's result is cached per document, across variables). So the walk of the document
(fragments, types, caps) is planned once per document and cached, and each request evaluates
the plan with its variables: a few microseconds, and a query asking ``first: $n`` costs what
``n`` makes it cost, not the worst case.
"""

import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, TypeVar

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInt,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_leaf_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import SchemaExtension
from strawberry.types.scalar import ScalarDefinition

from mlcatalog.api.context import Context
from mlcatalog.api.pagination import DEFAULT_PAGE, MAX_PAGE
from mlcatalog.api.rates import RateLimits, Refusal
from mlcatalog.catalog import validation, versions, webhooks
from mlcatalog.catalog.deployments import MAX_ENDPOINT, DeploymentStatus
from mlcatalog.catalog.errors import CatalogError, ErrorCode, invalid
from mlcatalog.catalog.versions import Stage
from mlcatalog.search import request as search

T = TypeVar("T")

MAX_COST = 50_000  # the default of MLCATALOG_LIMITS__MAX_COST
MAX_STRING = 10_000  # characters of a String input not in the table
MAX_ID = 200  # characters of an ID input: the API's ids are about 30
MAX_LIST = 100  # items of a list input, and of a list output, not in the table
DEFAULT_SEARCH_PAGE = 20
MAX_LINEAGE_EDGES = 1000  # edges of one lineage answer
MAX_LINEAGE_NODES = 500  # nodes one lineage walk reaches besides its root


@dataclass(frozen=True)
class Limit:
    items: int | None = None  # list inputs: most items; list outputs: the cap
    chars: int | None = None  # String/ID inputs (or each string of a list): most characters
    low: int | None = None  # Int inputs: the range
    high: int | None = None


CARD_SECTION = Limit(chars=validation.MAX_TEXT)
DESCRIPTION = Limit(chars=validation.MAX_TEXT)
PAGE = Limit(low=0, high=MAX_PAGE)

LIMITS: dict[str, Limit] = {
    # Inputs: larger than the defaults where the catalog allows more.
    "CreateProjectInput.description": DESCRIPTION,
    "RegisterModelInput.description": DESCRIPTION,
    "UpdateModelInput.description": DESCRIPTION,
    "CreateModelVersionInput.description": DESCRIPTION,
    "UpdateModelVersionInput.description": DESCRIPTION,
    "CreateDatasetInput.description": DESCRIPTION,
    "CreateDatasetVersionInput.description": DESCRIPTION,
    "CreateExperimentInput.description": DESCRIPTION,
    "CreateRunInput.description": DESCRIPTION,
    "AddCommentInput.body": Limit(chars=20_000),
    **{
        f"UpsertDocumentInput.{section}": CARD_SECTION
        for section in (
            "intendedUse",
            "factors",
            "trainingData",
            "evaluationData",
            "quantitativeAnalyses",
            "ethicalConsiderations",
            "caveatsAndRecommendations",
            "markdown",
        )
    },
    "UpsertDocumentInput.expectedRevision": Limit(low=0),
    "CreateModelVersionInput.metrics": Limit(items=1000),
    "LogMetricsInput.metrics": Limit(items=1000),
    # Its metrics in all (versions.MAX_BULK_METRICS) are counted by the catalog.
    "RegisterModelVersionsInput.versions": Limit(items=versions.MAX_BULK_VERSIONS),
    "RegisterModelVersionsInput.idempotencyKey": Limit(chars=200),
    "RegisterModelVersionsPayload.modelVersions": Limit(items=versions.MAX_BULK_VERSIONS),
    "CreateRunInput.params": Limit(items=1000),
    "EnvironmentInput.packages": Limit(items=1000),
    "CreateModelVersionInput.tags": Limit(items=validation.MAX_TAGS),
    "RegisterModelInput.tags": Limit(items=validation.MAX_TAGS),
    "CreateDatasetInput.tags": Limit(items=validation.MAX_TAGS),
    "SetTagsInput.tags": Limit(items=validation.MAX_TAGS),
    "RemoveTagsInput.keys": Limit(items=validation.MAX_TAGS),
    "CreateWebhookInput.url": Limit(chars=webhooks.MAX_URL),
    "CreateWebhookInput.secret": Limit(chars=webhooks.MAX_SECRET),
    "CreateWebhookInput.actions": Limit(items=webhooks.MAX_FILTER, chars=100),
    "CreateWebhookInput.stages": Limit(items=len(Stage)),
    "CreateWebhookInput.models": Limit(items=webhooks.MAX_FILTER),
    "UpdateWebhookInput.url": Limit(chars=webhooks.MAX_URL),
    "UpdateWebhookInput.secret": Limit(chars=webhooks.MAX_SECRET),
    "UpdateWebhookInput.actions": Limit(items=webhooks.MAX_FILTER, chars=100),
    "UpdateWebhookInput.stages": Limit(items=len(Stage)),
    "UpdateWebhookInput.models": Limit(items=webhooks.MAX_FILTER),
    "CreateModelVersionInput.trainingDatasets": Limit(items=100),
    "CreateModelVersionInput.evaluationDatasets": Limit(items=100),
    "CreateRunInput.inputs": Limit(items=100),
    "Model.versions(stages)": Limit(items=5),
    "Model.deployments(statuses)": Limit(items=len(DeploymentStatus)),
    "ModelVersion.deployments(statuses)": Limit(items=len(DeploymentStatus)),
    "RecordDeploymentInput.environment": Limit(chars=100),
    "RecordDeploymentInput.endpoint": Limit(chars=MAX_ENDPOINT),
    "Model.alias(name)": Limit(chars=100),
    "Query.lineage(depth)": Limit(low=1, high=20),
    "Query.lineage(limit)": Limit(low=1, high=MAX_LINEAGE_NODES),
    # Search: the contract's own bounds, checked here before the resolver runs.
    "SearchInput.text": Limit(chars=search.MAX_TEXT),
    "SearchInput.entityTypes": Limit(items=len(search.EntityType)),
    "SearchInput.filters": Limit(items=20),
    "FacetFilterInput.values": Limit(items=100, chars=1000),
    "SearchInput.metrics": Limit(items=20),
    "SearchInput.sort": Limit(items=3),
    "SearchInput.facets": Limit(items=20, chars=200),
    "SearchInput.metricStats": Limit(items=10),
    "MetricStatsInput.buckets": Limit(low=1, high=100),
    "SearchInput.first": Limit(low=0, high=search.MAX_PAGE),
    # Outputs: plain lists, and how many items each answers at most. Tags are bounded when
    # written (at most MAX_TAGS per entity), params and packages at most 1,000 per run or
    # version; the others grow with the catalog and are truncated here.
    "Model.tags": Limit(items=validation.MAX_TAGS),
    "ModelVersion.tags": Limit(items=validation.MAX_TAGS),
    "Dataset.tags": Limit(items=validation.MAX_TAGS),
    "Model.aliases": Limit(items=100),
    "ModelVersion.aliases": Limit(items=100),
    "ModelVersion.datasets": Limit(items=100),
    "DatasetVersion.models": Limit(items=100),
    "DatasetVersion.runs": Limit(items=100),
    "Run.inputs": Limit(items=100),
    "Run.outputs": Limit(items=100),
    "Run.params": Limit(items=1000),
    "Environment.packages": Limit(items=1000),
    "Lineage.nodes": Limit(items=MAX_LINEAGE_NODES + 1),
    "Lineage.frontier": Limit(items=MAX_LINEAGE_NODES + 1),
    "Lineage.edges": Limit(items=MAX_LINEAGE_EDGES),
    "SetModelVersionStagePayload.archived": Limit(items=100),
    "RollbackProductionPayload.archived": Limit(items=100),
    "SearchResult.facets": Limit(items=20),
    "Facet.buckets": Limit(items=100),
    "SearchResult.metricStats": Limit(items=10),
    "MetricStats.histogram": Limit(items=search.MAX_BUCKETS),
    "SearchEdge.highlights": Limit(items=3),
    "Highlight.fragments": Limit(items=5),
}


def cap(coordinate: str) -> int:
    """How many items the list output at ``coordinate`` holds at most."""
    return (LIMITS.get(coordinate) or Limit()).items or MAX_LIST


def capped(coordinate: str, items: Sequence[T]) -> list[T]:
    """The first ``cap(coordinate)`` items: a list that grows with the catalog stays bounded."""
    return list(items[: cap(coordinate)])


# Times without an offset mean UTC, in every DateTime input (the default scalar kept them
# naive, and comparing them with stored times failed as an internal error).
def _utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise StrawberryInputCoercionError(f'Value cannot represent a DateTime: "{value}".')
    try:
        return _utc(value)
    except ValueError:
        raise StrawberryInputCoercionError(
            f'Value cannot represent a DateTime: "{value[:100]}".'
        ) from None


UTC_DATETIME = ScalarDefinition(
    name="DateTime",
    description="Date with time (ISO 8601); a time without an offset is UTC.",
    specified_by_url=None,
    serialize=datetime.isoformat,
    parse_value=_parse_datetime,
    parse_literal=None,
    origin=datetime,
)


# The plan of a document: its fields, what each multiplies, and its selections per type.
@dataclass
class Selections:
    common: list["PlannedField"] = field(default_factory=list)
    # Fields asked only on some types of a union or interface: one applies per item.
    branches: dict[str, list["PlannedField"]] = field(default_factory=dict)


@dataclass
class PlannedField:
    coordinate: str
    node: FieldNode
    definition: GraphQLField | None  # None: an introspection field (bounded by the schema)
    is_list: bool
    is_leaf: bool  # a scalar or enum, or a list of them
    paged_edges: bool  # the edges of a connection: sized by the parent's page
    paged: bool  # takes a page size (first, or input.first)
    children: Selections


class Plan:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None):
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            raise ValueError("no such operation")
        self.operation: OperationDefinitionNode = operation
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        root = schema.get_root_type(operation.operation)
        if root is None:  # e.g. a subscription on a schema without them: execution says so
            raise ValueError("no such operation type")
        self.root = self._selections(operation.selection_set, root)

    def _collect(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType,
        on: str,
        out: dict[str, list[tuple[FieldNode, GraphQLNamedType]]],
        seen: frozenset[str] = frozenset(),
    ) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                out.setdefault(on, []).append((selection, parent))
                continue
            condition: NamedTypeNode | None
            if isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue
                condition, inner = fragment.type_condition, fragment.selection_set
                seen |= {name}
            elif isinstance(selection, InlineFragmentNode):
                condition, inner = selection.type_condition, selection.selection_set
            else:
                continue
            typed = self.schema.get_type(condition.name.value) if condition else None
            if typed is None or typed is parent or not isinstance(typed, GraphQLObjectType):
                self._collect(inner, parent if typed is None else typed, on, out, seen)
            else:
                self._collect(inner, typed, typed.name, out, seen)

    def _selections(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType, page_parent: bool = False
    ) -> Selections:
        grouped: dict[str, list[tuple[FieldNode, GraphQLNamedType]]] = {}
        self._collect(selection_set, parent, "", grouped)
        planned = Selections()
        for on, fields in grouped.items():
            items = [self._field(node, owner, page_parent) for node, owner in fields]
            if on:
                planned.branches[on] = items
            else:
                planned.common = items
        return planned

    def _field(self, node: FieldNode, parent: GraphQLNamedType, page_parent: bool) -> PlannedField:
        name = node.name.value
        coordinate = f"{parent.name}.{name}"
        fields = getattr(parent, "fields", {})
        definition: GraphQLField | None = fields.get(name)
        if definition is None or name.startswith("__"):
            return PlannedField(coordinate, node, None, False, True, False, False, Selections())
        output: GraphQLOutputType = get_nullable_type(definition.type)  # type: ignore[assignment]
        is_list = isinstance(output, GraphQLList)
        paged = "first" in definition.args or "last" in definition.args or _input_paged(definition)
        children = Selections()
        if node.selection_set is not None:
            children = self._selections(node.selection_set, get_named_type(output), paged)
        return PlannedField(
            coordinate,
            node,
            definition,
            is_list,
            is_leaf_type(get_named_type(output)),
            page_parent and name == "edges",
            paged,
            children,
        )

    @cached_property
    def coordinates(self) -> frozenset[str]:
        """Every field the operation may read, as ``Type.field``."""
        return frozenset(planned.coordinate for planned in self.fields())

    def fields(self) -> Iterator[PlannedField]:
        def walk(selections: Selections) -> Iterator[PlannedField]:
            branches = (f for b in selections.branches.values() for f in b)
            for planned in [*selections.common, *branches]:
                yield planned
                yield from walk(planned.children)

        return walk(self.root)


def _input_paged(definition: GraphQLField) -> bool:
    argument = definition.args.get("input")
    if argument is None:
        return False
    input_type = get_named_type(argument.type)
    return isinstance(input_type, GraphQLInputObjectType) and "first" in input_type.fields


def _page(arguments: dict[str, Any]) -> int:
    """The page size a paged field's arguments ask for (its default when they ask nothing)."""
    if "input" in arguments and isinstance(arguments["input"], dict):
        first = arguments["input"].get("first")
        return DEFAULT_SEARCH_PAGE if first is None else int(first)
    # Every connection declares both, null by default: the one given (at most one may be).
    size = arguments.get("first")
    if size is None:
        size = arguments.get("last")
    return DEFAULT_PAGE if size is None else int(size)


class Evaluation:
    """One request's plan with its variables: the argument values, checked, and the cost."""

    def __init__(self, plan: Plan, variables: VariableValues) -> None:
        self.plan = plan
        self.variables = variables
        self.arguments: dict[int, dict[str, Any]] = {}

    def args(self, planned: PlannedField) -> dict[str, Any]:
        if planned.definition is None:  # an introspection field: no arguments of ours
            return {}
        key = id(planned)
        if key not in self.arguments:
            self.arguments[key] = get_argument_values(
                planned.definition, planned.node, self.variables
            )
        return self.arguments[key]

    def check_inputs(self) -> None:
        for planned in self.plan.fields():
            if planned.definition is None or not planned.definition.args:
                continue
            values = self.args(planned)
            for name, argument in planned.definition.args.items():
                if name in values:
                    _check(
                        values[name],
                        argument.type,
                        f"{planned.coordinate}({name})",
                        f"{planned.node.name.value}({name})",
                    )

    def cost(self, selections: Selections | None = None, page: int = 1) -> int:
        selections = selections or self.plan.root
        total = sum(self._field_cost(f, page) for f in selections.common)
        return total + max(
            (sum(self._field_cost(f, page) for f in b) for b in selections.branches.values()),
            default=0,
        )

    def _field_cost(self, planned: PlannedField, page: int) -> int:
        if planned.is_leaf:
            return 0
        inner = _page(self.args(planned)) if planned.paged else 1
        size = page if planned.paged_edges else cap(planned.coordinate) if planned.is_list else 1
        return size * (1 + self.cost(planned.children, inner))


def _check(value: Any, type_: GraphQLInputType, coordinate: str, path: str) -> None:
    """Refuse ``value`` (of ``type_``, at ``coordinate``) when it breaks its limit."""
    if value is None:
        return
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    limit = LIMITS.get(coordinate) or Limit()
    if isinstance(type_, GraphQLList):
        most = limit.items or MAX_LIST
        if len(value) > most:
            raise invalid(f"{path} has {len(value)} items; at most {most} are allowed")
        for i, item in enumerate(value):
            _check_item(item, type_.of_type, coordinate, limit, f"{path}[{i}]")
        return
    _check_item(value, type_, coordinate, limit, path)


def _check_item(value: Any, type_: Any, coordinate: str, limit: Limit, path: str) -> None:
    if value is None:
        return
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLInputObjectType):
        for name, input_field in type_.fields.items():
            key = input_field.out_name or name
            if key in value:
                _check(value[key], input_field.type, f"{type_.name}.{name}", f"{path}.{name}")
    elif isinstance(type_, GraphQLList):
        _check(value, type_, coordinate, path)
    elif type_ is GraphQLString or type_ is GraphQLID:
        most = limit.chars or (MAX_ID if type_ is GraphQLID else MAX_STRING)
        if len(value) > most:
            raise invalid(f"{path} is {len(value)} characters long; at most {most} are allowed")
        _refuse_nul(value, path)
    elif isinstance(type_, GraphQLScalarType) and type_.name == "JSON":
        _refuse_nul(value, path)
    elif type_ is GraphQLInt:
        low, high = _int_range(coordinate, limit)
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise invalid(f"{path} must be {bounds}, not {value}")
    elif type_ is GraphQLFloat and not math.isfinite(value):
        raise invalid(f"{path} must be a finite number, not {value}")


def _refuse_nul(value: Any, path: str) -> None:
    """No text may hold a NUL character (PostgreSQL stores none, in text or in JSON) or a lone
    surrogate (no database stores one: it cannot be written as UTF-8)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid(f"{path} holds a NUL character (U+0000), which no text may")
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                raise invalid(f"{path} holds a lone surrogate, which is no character") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, path)
            _refuse_nul(item, path)
    elif isinstance(value, list):
        for item in value:
            _refuse_nul(item, path)


def _int_range(coordinate: str, limit: Limit) -> tuple[int | None, int | None]:
    if limit.low is not None or limit.high is not None:
        return limit.low, limit.high
    if coordinate.endswith(("(first)", "(last)")):
        return PAGE.low, PAGE.high
    return None, None


# Characters of a document that the parse, validation and plan caches keep. One string literal
# is one token, so a document within the token limit can still be as large as the body (4 MiB):
# a thousand such documents kept would hold gigabytes. Real queries are far smaller; a bigger
# document is parsed, validated and planned again on each request.
MAX_CACHED_QUERY = 32 * 1024


def cacheable(query: str | None) -> bool:
    return query is not None and len(query) <= MAX_CACHED_QUERY


class _PlanCache:
    """Plans by document text and operation name: planning walks the document once."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.plans: OrderedDict[tuple[str, str | None], Plan] = OrderedDict()

    def get(
        self, schema: GraphQLSchema, query: str | None, document: DocumentNode, name: str | None
    ) -> Plan:
        if query is None or not cacheable(query):
            return Plan(schema, document, name)
        key = (query, name)
        plan = self.plans.get(key)
        if plan is None:
            plan = self.plans[key] = Plan(schema, document, name)
            if len(self.plans) > self.maxsize:
                self.plans.popitem(last=False)
        else:
            self.plans.move_to_end(key)
        return plan


def _operations(document: DocumentNode) -> int:
    return sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)


class RequestLimits(SchemaExtension):
    """Refuse, before execution, inputs over their limits, queries over MAX_COST, and operations
    over their caller's rate limits (api/rates.py, with the cost computed here)."""

    plans = _PlanCache(maxsize=1000)

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.result is None:
            error = self.refusal(context.schema._schema, context.query, document)
            if error is not None:
                context.result = ExecutionResult(data=None, errors=[error])
        yield

    def refusal(
        self, schema: GraphQLSchema, query: str | None, document: DocumentNode
    ) -> GraphQLError | None:
        context = self.execution_context
        if context._provided_operation_name is None and _operations(document) > 1:
            # The spec's rule; strawberry would quietly run the first one. Its public
            # operation_name falls back to that first name, hence the name the client gave.
            message = "the document holds several operations: name one (operationName)"
            return GraphQLError(message, original_error=invalid(message))
        try:
            plan = self.plans.get(schema, query, document, context.operation_name)
        except ValueError:
            return None  # no such operation: execution says so
        variables = get_variable_values(
            schema, plan.operation.variable_definitions or (), context.variables or {}
        )
        if not isinstance(variables, VariableValues):
            return None  # the executor reports variables that do not fit their types
        evaluation = Evaluation(plan, variables)
        try:
            evaluation.check_inputs()
            cost = evaluation.cost()
        except GraphQLError:
            return None  # an argument the executor will refuse with its own message
        except CatalogError as error:
            return GraphQLError(error.message, original_error=error)
        ours = context.context if isinstance(context.context, Context) else None
        most = ours.max_cost if ours is not None else MAX_COST
        if cost > most:
            message = (
                f"this query may resolve {cost:,} objects, more than the {most:,} allowed:"
                " ask for smaller pages (first) or fewer nested lists"
            )
            return GraphQLError(message, original_error=invalid(message))
        if ours is None:
            return None
        # A cached answer to the same document and variables is charged this cost again.
        ours.cost, ours.reads = cost, plan.coordinates
        if ours.rates is not None:
            # The principal's subject; contexts built in process have only an actor.
            subject = ours.principal.subject if ours.principal is not None else ours.actor
            return rate_limited(ours.rates, subject, plan, cost)
        return None


def rate_limited(rates: RateLimits, subject: str, plan: Plan, cost: int) -> GraphQLError | None:
    """The caller's rate limit, checked last: an operation refused for another reason does not
    count, and one refused here runs nothing, so a refused mutation changes nothing."""
    if plan.operation.operation == OperationType.MUTATION:
        fields = sum(f.definition is not None for f in plan.root.common)
        refusal = rates.mutation(subject, fields)
    elif plan.operation.operation == OperationType.QUERY:
        refusal = rates.query(subject, cost)
    else:
        return None
    return None if refusal is None else GraphQLError(**rate_limit_error(refusal))


def rate_limit_error(refusal: Refusal) -> dict[str, Any]:
    """The error of an operation over its caller's rate limit, as GraphQL formats it."""
    code = {"code": str(ErrorCode.RATE_LIMITED), "retryAfter": refusal.retry_after}
    return {"message": refusal.message, "extensions": code}
