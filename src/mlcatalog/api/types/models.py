"""Registered models and their aliases; the inputs and payloads of the model mutations."""

from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Self

import strawberry
from strawberry import UNSET, relay

from mlcatalog.api.context import Info
from mlcatalog.api.limits import capped
from mlcatalog.api.pagination import Connection, children_connection
from mlcatalog.api.types.common import OrderDirection, RowNode, node_of, required_node
from mlcatalog.api.types.documents import Document
from mlcatalog.api.types.lifecycle import (
    AliasChange,
    Deployment,
    StageChange,
    deployment_filters,
    journal_changes,
)
from mlcatalog.api.types.projects import Project, project_of
from mlcatalog.api.types.tags import Tag, TagInput, tag_list
from mlcatalog.catalog.approvals import RequestStatus
from mlcatalog.catalog.deployments import DeploymentStatus
from mlcatalog.catalog.versions import Stage
from mlcatalog.store import history
from mlcatalog.store.paging import DEPLOYMENTS_OF_MODEL, REQUESTS_OF_MODEL, VERSIONS_OF_MODEL
from mlcatalog.store.rows import ModelRow

if TYPE_CHECKING:
    from mlcatalog.api.types.approvals import StageTransitionRequest
    from mlcatalog.api.types.versions import ModelVersion

ModelVersionRef = Annotated["ModelVersion", strawberry.lazy("mlcatalog.api.types.versions")]
RequestRef = Annotated["StageTransitionRequest", strawberry.lazy("mlcatalog.api.types.approvals")]


async def _production_move(info: Info, model_id: int, as_of: datetime | None) -> StageChange | None:
    async with info.context.loaders.read() as session:
        entry = await history.holder_at(session, model_id, _moment(as_of))
    return StageChange.from_row(entry) if entry else None


def _moment(as_of: datetime | None) -> datetime:
    return as_of or datetime.now(UTC)  # the DateTime scalar reads a time without offset as UTC


@strawberry.type(description="A registered model: a name in a project, and its versions.")
class Model(RowNode):
    row_type = ModelRow
    id: relay.NodeID[int]
    name: str
    description: str
    owner: str
    task: str | None
    archived_at: datetime | None
    allows_several_in_production: bool = strawberry.field(
        description="Whether promoting a version to PRODUCTION leaves the ones there (else it"
        " archives them)."
    )
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    project_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: ModelRow) -> Self:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            owner=row.owner,
            task=row.task,
            archived_at=row.archived_at,
            allows_several_in_production=row.allows_several_in_production,
            created_at=row.created_at,
            created_by=row.created_by,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
            project_id=row.project_id,
        )

    @strawberry.field
    async def project(self, info: Info) -> Project:
        return await project_of(info, self.project_id)

    @strawberry.field
    async def tags(self, info: Info) -> list[Tag]:
        return tag_list(await info.context.loaders.tags("Model", self.id))

    @strawberry.field(description="Versions, newest first; `stages` keeps only those stages.")
    async def versions(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        stages: list[Stage] | None = None,
    ) -> Connection[ModelVersionRef]:
        return await children_connection(
            info.context.loaders,
            VERSIONS_OF_MODEL,
            self.id,
            lambda row: node_of("ModelVersion", row),
            first=first,
            after=after,
            last=last,
            before=before,
            filters=(("stages", tuple(s.value for s in stages or ())),),
        )

    @strawberry.field(description="The version with the highest number.")
    async def latest_version(self, info: Info) -> ModelVersionRef | None:
        row = await info.context.loaders.latest_version(self.id)
        return node_of("ModelVersion", row) if row else None

    @strawberry.field(
        description="The newest version in PRODUCTION, if any; with `asOf`, the version that"
        " held PRODUCTION then (read from the journal: `productionMove` says who moved it)."
    )
    async def production_version(
        self, info: Info, as_of: datetime | None = None
    ) -> ModelVersionRef | None:
        if as_of is not None:
            move = await _production_move(info, self.id, as_of)
            return None if move is None else await move.version(info)
        row = await info.context.loaders.latest_version(self.id, Stage.PRODUCTION.value)
        return node_of("ModelVersion", row) if row else None

    @strawberry.field(
        description="The move that put the version holding PRODUCTION at `asOf` (default: now)"
        " there: which version, who moved it, when, under which approval. With several"
        " versions in production, the one promoted last."
    )
    async def production_move(
        self, info: Info, as_of: datetime | None = None
    ) -> StageChange | None:
        return await _production_move(info, self.id, as_of)

    @strawberry.field(
        description="Who held alias `name` at `asOf` (default: now): the move that pointed it"
        " at its version then, or null when it pointed nowhere."
    )
    async def alias(
        self, info: Info, name: str, as_of: datetime | None = None
    ) -> AliasChange | None:
        async with info.context.loaders.read() as session:
            entry = await history.alias_at(session, self.id, name, _moment(as_of))
        return AliasChange.from_row(entry) if entry else None

    @strawberry.field(description="Its versions' stage moves, newest first, from the journal.")
    async def stage_history(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[StageChange]:
        return await journal_changes(
            info,
            StageChange.from_row,
            history.STAGE_ACTIONS,
            model_id=self.id,
            first=first,
            after=after,
            last=last,
            before=before,
        )

    @strawberry.field(description="Its aliases' moves, newest first, from the journal.")
    async def alias_history(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[AliasChange]:
        return await journal_changes(
            info,
            AliasChange.from_row,
            history.ALIAS_ACTIONS,
            model_id=self.id,
            first=first,
            after=after,
            last=last,
            before=before,
        )

    @strawberry.field(
        description="Where its versions run; `environment` and `statuses` narrow the list."
    )
    async def deployments(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        environment: str | None = None,
        statuses: list[DeploymentStatus] | None = None,
    ) -> Connection[Deployment]:
        return await children_connection(
            info.context.loaders,
            DEPLOYMENTS_OF_MODEL,
            self.id,
            Deployment.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
            filters=deployment_filters(environment, statuses),
        )

    @strawberry.field(description="Named pointers such as champion and challenger.")
    async def aliases(self, info: Info) -> list["Alias"]:
        rows = await info.context.loaders.aliases("model", self.id)
        return [
            Alias(name=row.name, version_id=row.version_id) for row in capped("Model.aliases", rows)
        ]

    @strawberry.field(description="The model card.")
    async def card(self, info: Info) -> Document | None:
        row = await info.context.loaders.document("Model", self.id)
        return Document.from_row(row) if row else None

    @strawberry.field(description="Stage transition requests for its versions, newest first.")
    async def transition_requests(
        self,
        info: Info,
        status: RequestStatus | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[RequestRef]:
        return await children_connection(
            info.context.loaders,
            REQUESTS_OF_MODEL,
            self.id,
            lambda row: node_of("StageTransitionRequest", row),
            first=first,
            after=after,
            last=last,
            before=before,
            filters=(("status", status.value if status else None),),
        )


@strawberry.type(description="A name that points at one version of a model.")
class Alias:
    name: str
    version_id: strawberry.Private[int]

    @strawberry.field
    async def version(self, info: Info) -> ModelVersionRef:
        version: ModelVersion = await required_node(info, "ModelVersion", self.version_id)
        return version


@strawberry.enum
class ModelOrderField(Enum):
    NAME = "name"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


@strawberry.input
class ModelOrder:
    field: ModelOrderField = ModelOrderField.NAME
    direction: OrderDirection = OrderDirection.ASC


@strawberry.input(description="Every given condition must hold.")
class ModelFilter:
    project: str | None = None
    task: str | None = None
    owner: str | None = None
    name_contains: str | None = None
    tag: TagInput | None = strawberry.field(default=None, description="An empty value matches any.")
    stage: Stage | None = strawberry.field(default=None, description="Has a version in this stage.")
    include_archived: bool = False


@strawberry.input
class RegisterModelInput:
    project: str = strawberry.field(description="The project's name.")
    name: str
    description: str | None = None
    owner: str | None = strawberry.field(default=None, description="Defaults to the caller.")
    task: str | None = None
    tags: list[TagInput] | None = None


@strawberry.type
class RegisterModelPayload:
    model: Model


@strawberry.input(description="Fields left out stay as they are.")
class UpdateModelInput:
    id: relay.GlobalID
    description: str | None = UNSET
    owner: str | None = UNSET
    task: str | None = UNSET
    allows_several_in_production: bool | None = UNSET


@strawberry.type
class UpdateModelPayload:
    model: Model


@strawberry.input
class ArchiveModelInput:
    id: relay.GlobalID = strawberry.field(description="The model.")


@strawberry.type
class ArchiveModelPayload:
    model: Model


@strawberry.input
class RestoreModelInput:
    id: relay.GlobalID = strawberry.field(description="The model.")


@strawberry.type
class RestoreModelPayload:
    model: Model


@strawberry.input
class DeleteModelInput:
    id: relay.GlobalID = strawberry.field(description="The model.")


@strawberry.type
class DeleteModelPayload:
    deleted_id: relay.GlobalID
