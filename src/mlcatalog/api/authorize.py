"""The one authorizer: every field of the schema passes it, so no resolver checks by hand.

``authorize(schema)`` wraps each field's resolver once, at start. A field ``Type.field`` is read
when the policy lets the caller read it; a root mutation ``Mutation.name`` runs when the policy
lets the caller write it in some project, and its changes commit only when every one of them is
allowed in its own project (``Gate.check_writes``, run by the unit of work before it commits).

Decisions that do not depend on the entity are made once per request (``Access.verdict``, a
dict lookup after the first time), so most fields cost one lookup. A caller whose roles differ
between the projects it sees (a maintainer here, a viewer there) needs each entity's project:
then objects remember the project of the entity they came from (``Gate.owner``), which values
without a project of their own (an Artifact, a Metric) inherit.

Entities of projects the caller does not see are left out of every list, count and search in
their SQL or OpenSearch query (``store.visibility``); as a second line, a field that returns
entities drops those of hidden projects, which is what keeps ``node(id)`` and the links between
projects (lineage, training data) from showing them.
"""

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLType,
    GraphQLUnionType,
    default_field_resolver,
)

from mlcatalog.auth.access import READ, WRITE, WRITE_OWN, Rights, Verdict
from mlcatalog.catalog.errors import CatalogError, ErrorCode
from mlcatalog.store.visibility import Visible

Resolver = Callable[..., Any]


class NoProject:
    """What is no entity (a root, a payload, a search result): the projects the caller sees
    decide, as a whole."""


NO_PROJECT = NoProject()


def forbidden(what: str, project: str | None = None) -> CatalogError:
    where = f" in project {project!r}" if project else ""
    return CatalogError(ErrorCode.FORBIDDEN, f"the policy does not let you {what}{where}")


@dataclass
class Gate:
    """One request's view of the caller's access."""

    access: Rights
    # The project of each object the caller's answer holds, by id (with the object kept alive,
    # so that its id is not reused within the request); only for callers whose roles differ
    # between projects.
    owner: dict[int, tuple[Any, str | None]] = field(default_factory=dict)
    # The mutation running, as its policy object (Mutation.name), for check_writes.
    mutation: str | None = None
    # Project names by id, as this request found them (api/types/ownership.py).
    project_names: dict[int, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.visible: Visible = self.access.visible()
        self.uniform = self.access.uniform

    async def project(
        self, source: Any, info: Any, project_of: "ProjectOf"
    ) -> "str | NoProject | None":
        """The project of ``source``: an entity's own, or the one its value was taken from."""
        known = self.owner.get(id(source))
        if known is not None:
            return known[1]
        project = await project_of(source, info)
        if not isinstance(project, NoProject):
            self.owner[id(source)] = (source, project)
        return project

    def remember(self, value: Any, project: str | None, is_entity: Callable[[Any], bool]) -> None:
        """``value`` (or each item) came from an object of ``project``: values without a project
        of their own take it; an entity keeps its own (``project`` finds it)."""
        if isinstance(value, list | tuple):
            for item in value:
                self.remember(item, project, is_entity)
        elif value is not None and not isinstance(value, str | int | float | bool | dict):
            if is_entity(value):
                return
            self.owner.setdefault(id(value), (value, project))


ProjectOf = Callable[[Any, Any], Awaitable[str | NoProject | None]]
# (result, info, visible, nullable): the result without entities of hidden projects.
VisibleOnly = Callable[[Any, Any, Visible, bool], Awaitable[Any]]


@dataclass(frozen=True)
class Field:
    coordinate: str
    resolve: Resolver
    returns_entities: bool
    returns_objects: bool
    nullable: bool


def authorize(
    schema: GraphQLSchema,
    project_of: ProjectOf,
    visible_only: VisibleOnly,
    is_entity: Callable[[Any], bool],
) -> None:
    """Wrap every field of ``schema`` (but introspection's) in the authorizer.

    ``project_of(source, info)`` is the project of an entity object (``NO_PROJECT`` for what is no
    entity); ``visible_only`` drops the entities of hidden projects from what a field returned.
    """
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, graphql_field in type_.fields.items():
            spec = Field(
                coordinate=f"{type_.name}.{name}",
                resolve=graphql_field.resolve or default_field_resolver,
                returns_entities=_returns_entities(graphql_field.type),
                returns_objects=_returns_objects(graphql_field.type),
                nullable=not isinstance(graphql_field.type, GraphQLNonNull),
            )
            if type_ is schema.mutation_type:
                graphql_field.resolve = _mutation(spec)
            else:
                # A subscription's resolve runs on each event, as any read (the event is its
                # source: its project decides); its subscribe, once, before the stream starts.
                graphql_field.resolve = _read(spec, project_of, visible_only, is_entity)
            if graphql_field.subscribe is not None:
                graphql_field.subscribe = _subscription(spec.coordinate, graphql_field.subscribe)


def _returns_entities(type_: GraphQLType) -> bool:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    if isinstance(type_, GraphQLInterfaceType | GraphQLUnionType):
        return True  # node(id:), a lineage node: may be any entity
    if not isinstance(type_, GraphQLObjectType):
        return False
    if any(i.name == "Node" for i in type_.interfaces):
        return True
    edges = type_.fields.get("edges")
    return edges is not None and type_.name.endswith("Connection")


def _returns_objects(type_: GraphQLType) -> bool:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return isinstance(type_, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType)


def _read(
    spec: Field,
    project_of: ProjectOf,
    visible_only: VisibleOnly,
    is_entity: Callable[[Any], bool],
) -> Resolver:
    coordinate, resolve = spec.coordinate, spec.resolve

    # For a caller whose rights differ between projects, what a field returns remembers the
    # project it came from: a value of no project of its own (an Artifact, a page of a card's
    # revisions) is decided by its entity's.
    keeps_owner = spec.returns_objects

    async def checked(gate: Gate, verdict: Verdict, source: Any, info: Any, kwargs: Any) -> Any:
        project: str | NoProject | None = NO_PROJECT
        if verdict is Verdict.DEPENDS or (keeps_owner and not gate.uniform):
            project = await gate.project(source, info, project_of)
        if verdict is Verdict.DEPENDS:
            if isinstance(project, NoProject):
                # A root answers only what the caller sees; any other object whose project is
                # unknown is refused: nothing is allowed by default.
                allowed = source is None
            else:
                allowed = gate.access.allows(coordinate, READ, project)
            if not allowed:
                raise forbidden(f"read {coordinate}")
        result = resolve(source, info, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        if spec.returns_entities and not gate.visible.everything:
            result = await visible_only(result, info, gate.visible, spec.nullable)
        if keeps_owner and not isinstance(project, NoProject):
            gate.remember(result, project, is_entity)
        return result

    def resolver(source: Any, info: Any, **kwargs: Any) -> Any:
        gate: Gate = info.context.gate
        verdict = gate.access.verdict(coordinate)
        if verdict is Verdict.DENY:
            raise forbidden(f"read {coordinate}")
        if (
            verdict is Verdict.ALLOW
            and (gate.visible.everything or not spec.returns_entities)
            and (gate.uniform or not keeps_owner)
        ):
            return resolve(source, info, **kwargs)
        return checked(gate, verdict, source, info, kwargs)

    resolver.__wrapped__ = resolve  # type: ignore[attr-defined]  # bench/authorization.py
    return resolver


def _subscription(coordinate: str, subscribe: Resolver) -> Resolver:
    """Refuse a stream the caller may read in no project; where it may in some, the stream
    carries only their events and each event's fields are checked as it is delivered."""

    def resolver(source: Any, info: Any, **kwargs: Any) -> Any:
        if info.context.gate.access.verdict(coordinate) is Verdict.DENY:
            raise forbidden(f"read {coordinate}")
        return subscribe(source, info, **kwargs)

    return resolver


def _mutation(spec: Field) -> Resolver:
    coordinate, resolve = spec.coordinate, spec.resolve

    async def resolver(source: Any, info: Any, **kwargs: Any) -> Any:
        gate: Gate = info.context.gate
        if gate.access.verdict(coordinate, WRITE) is Verdict.DENY and (
            gate.access.verdict(coordinate, WRITE_OWN) is Verdict.DENY
        ):
            error = forbidden(f"run {coordinate}")
            await info.context.journal_denied(coordinate, None, error.message)
            raise error
        gate.mutation = coordinate
        try:
            result = resolve(source, info, **kwargs)
            return await result if inspect.isawaitable(result) else result
        except WriteRefused as refused:
            await info.context.journal_denied(coordinate, refused.project_id, refused.message)
            raise
        finally:
            gate.mutation = None

    return resolver


class WriteRefused(CatalogError):
    """A change the policy does not allow in its project: the whole write rolls back."""

    def __init__(self, message: str, project_id: int | None) -> None:
        super().__init__(ErrorCode.FORBIDDEN, message)
        self.project_id = project_id


def unwrap_fields(schema: GraphQLSchema) -> Iterable[tuple[str, GraphQLField]]:
    """Every field the policy must cover, as (``Type.field``, field)."""
    for type_ in schema.type_map.values():
        if isinstance(type_, GraphQLObjectType) and not type_.name.startswith("__"):
            for name, graphql_field in type_.fields.items():
                yield f"{type_.name}.{name}", graphql_field


__all__ = ["READ", "WRITE", "WRITE_OWN", "Gate", "WriteRefused", "authorize", "forbidden"]
