"""The lifecycle's types: deployments, and stage and alias moves read from the journal; the
inputs and payloads of rollbackProduction and the deployment mutations."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Self, TypeVar

import strawberry
from strawberry import UNSET, relay

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode
from mlcatalog.api.pagination import Connection, listing_connection
from mlcatalog.api.types.common import RowNode, load_node, required_node
from mlcatalog.catalog.deployments import DeploymentStatus
from mlcatalog.catalog.lifecycle import Stage
from mlcatalog.store import history, queries
from mlcatalog.store.journal import Action, AliasPointer, EntityType, StageEntered, after, before
from mlcatalog.store.rows import DeploymentRow, JournalRow

if TYPE_CHECKING:
    from mlcatalog.api.types.models import Model
    from mlcatalog.api.types.versions import ModelVersion

ModelRef = Annotated["Model", strawberry.lazy("mlcatalog.api.types.models")]
ModelVersionRef = Annotated["ModelVersion", strawberry.lazy("mlcatalog.api.types.versions")]

strawberry.enum(
    DeploymentStatus,
    description="Whether a deployment serves; PENDING, ACTIVE and DRAINING take traffic.",
)


def deployment_filters(
    environment: str | None, statuses: list[DeploymentStatus] | None
) -> tuple[tuple[str, Any], ...]:
    """The filters of DEPLOYMENTS_OF_MODEL and DEPLOYMENTS_OF_VERSION."""
    return (("environment", environment), ("statuses", tuple(s.value for s in statuses or ())))


T = TypeVar("T")


async def journal_changes(
    info: Info,
    node: Callable[[JournalRow], T],
    actions: Sequence[str],
    *,
    model_id: int | None = None,
    version_id: int | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[T]:
    """A page of the lifecycle entries filed under a model, or about one version, newest first."""
    listing = queries.journal_listing(
        model_id=model_id,
        entity=(EntityType.MODEL_VERSION, version_id) if version_id is not None else None,
        actions=actions,
        visible=info.context.gate.visible,
    )
    return await listing_connection(
        info.context.loaders, listing, node, first=first, after=after, last=last, before=before
    )


@strawberry.type(description="Where a model version runs: an endpoint in an environment.")
class Deployment(RowNode):
    row_type = DeploymentRow
    id: relay.NodeID[int]
    environment: str = strawberry.field(description="e.g. production, staging, eu-west.")
    endpoint: str = strawberry.field(description="The URL it serves at (http, https, grpc).")
    status: DeploymentStatus
    traffic_share: float = strawberry.field(
        description="Its share of the endpoint's traffic, 0 to 1; the serving deployments at one"
        " endpoint add up to at most 1."
    )
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    version_id: strawberry.Private[int]
    model_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: DeploymentRow) -> Self:
        return cls(
            id=row.id,
            environment=row.environment,
            endpoint=row.endpoint,
            status=DeploymentStatus(row.status),
            traffic_share=row.traffic_share,
            created_at=row.created_at,
            created_by=row.created_by,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
            version_id=row.version_id,
            model_id=row.model_id,
        )

    @strawberry.field
    async def version(self, info: Info) -> ModelVersionRef:
        version: ModelVersion = await required_node(info, "ModelVersion", self.version_id)
        return version

    @strawberry.field
    async def model(self, info: Info) -> ModelRef:
        model: Model = await required_node(info, "Model", self.model_id)
        return model


@strawberry.type(description="A version's move between stages, as the journal recorded it.")
class StageChange:
    from_stage: Stage | None = strawberry.field(
        name="from", description="Null when the version was created in `to`."
    )
    to_stage: Stage | None = strawberry.field(
        name="to", description="Null when the version was deleted."
    )
    at: datetime
    actor: str = strawberry.field(description="Who moved it (the journal's actor).")
    approval: strawberry.ID | None = strawberry.field(
        description="The approved request that carried the move; null for moves without one."
    )
    rollback: bool = strawberry.field(description="Moved back by rollbackProduction.")
    sequence: float = strawberry.field(description="The journal entry's sequence number.")
    version_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: JournalRow) -> Self:
        left, entered = history.stage_left(row), history.stage_entered(row)
        moved = (
            after(row, StageEntered) if row.action == Action.MODEL_VERSION_STAGE_CHANGED else None
        )
        approval = moved.get("approval_id") if moved else None
        return cls(
            from_stage=Stage(left) if left else None,
            to_stage=Stage(entered) if entered else None,
            at=row.at,
            actor=row.actor,
            approval=strawberry.ID(str(approval)) if approval is not None else None,
            rollback=bool(moved and moved.get("rollback")),
            sequence=float(row.seq),
            version_id=row.entity_id,
        )

    @strawberry.field(description="The version moved; null once deleted or where hidden.")
    async def version(self, info: Info) -> ModelVersionRef | None:
        version: ModelVersion | None = await load_node(info, "ModelVersion", self.version_id)
        return version


@strawberry.type(description="An alias set, moved or removed, as the journal recorded it.")
class AliasChange:
    alias: str
    at: datetime
    actor: str = strawberry.field(description="Who moved it (the journal's actor).")
    sequence: float = strawberry.field(description="The journal entry's sequence number.")
    version_id: strawberry.Private[int | None]
    previous_version_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: JournalRow) -> Self:
        was: AliasPointer | None = None
        now: AliasPointer | None = None
        if row.action != Action.ALIAS_SET:
            was = before(row, AliasPointer)
        if row.action != Action.ALIAS_REMOVED:
            now = after(row, AliasPointer)
        pointer = now or was
        return cls(
            alias=pointer["alias"] if pointer else "",
            at=row.at,
            actor=row.actor,
            sequence=float(row.seq),
            version_id=now["version_id"] if now else None,
            previous_version_id=was["version_id"] if was else None,
        )

    @strawberry.field(description="The version it points at after the move; null once removed.")
    async def version(self, info: Info) -> ModelVersionRef | None:
        if self.version_id is None:
            return None
        version: ModelVersion | None = await load_node(info, "ModelVersion", self.version_id)
        return version

    @strawberry.field(description="The version it pointed at before; null when newly set.")
    async def previous_version(self, info: Info) -> ModelVersionRef | None:
        if self.previous_version_id is None:
            return None
        version: ModelVersion | None = await load_node(
            info, "ModelVersion", self.previous_version_id
        )
        return version


@strawberry.input
class RollbackProductionInput:
    model: relay.GlobalID


@strawberry.type
class RollbackProductionPayload:
    model_version: ModelVersionRef = strawberry.field(
        description="The version put back into PRODUCTION."
    )
    archived: list[ModelVersionRef] = strawberry.field(
        description="The versions the rollback archived: the one it replaced."
    )


@strawberry.input
class RecordDeploymentInput:
    version: relay.GlobalID
    environment: str
    endpoint: str
    status: DeploymentStatus = DeploymentStatus.ACTIVE
    traffic_share: float = 1.0

    def to_catalog(self) -> dict[str, Any]:
        """The keyword arguments of ``deployments.record_deployment``."""
        return {
            "version_id": decode(self.version, "ModelVersion"),
            "environment": self.environment,
            "endpoint_url": self.endpoint,
            "status": self.status,
            "traffic_share": self.traffic_share,
        }


@strawberry.type
class RecordDeploymentPayload:
    deployment: Deployment


@strawberry.input(description="Fields left out stay as they are.")
class UpdateDeploymentInput:
    id: relay.GlobalID
    status: DeploymentStatus | None = UNSET
    traffic_share: float | None = UNSET

    def changes(self) -> dict[str, Any]:
        """The ``changes`` of ``deployments.update_deployment``: only the fields sent."""
        return {
            key: value
            for key, value in (("status", self.status), ("traffic_share", self.traffic_share))
            if value is not UNSET and value is not None
        }


@strawberry.type
class UpdateDeploymentPayload:
    deployment: Deployment


@strawberry.input
class RemoveDeploymentInput:
    id: relay.GlobalID = strawberry.field(description="The deployment.")


@strawberry.type
class RemoveDeploymentPayload:
    deleted_id: relay.GlobalID
    model_version: ModelVersionRef | None
