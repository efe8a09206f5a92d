"""Stage transition requests, quality gates and project settings; the inputs and payloads of
their mutations."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from mlcatalog.api.context import Info
from mlcatalog.api.types.common import RowNode, required_node
from mlcatalog.catalog.approvals import RequestStatus
from mlcatalog.catalog.gates import GateKind, describe
from mlcatalog.catalog.versions import Stage
from mlcatalog.store.rows import QualityGateRow, StageTransitionRequestRow

if TYPE_CHECKING:
    from mlcatalog.api.types.models import Model
    from mlcatalog.api.types.projects import Project
    from mlcatalog.api.types.versions import ModelVersion

ModelRef = Annotated["Model", strawberry.lazy("mlcatalog.api.types.models")]
ProjectRef = Annotated["Project", strawberry.lazy("mlcatalog.api.types.projects")]
ModelVersionRef = Annotated["ModelVersion", strawberry.lazy("mlcatalog.api.types.versions")]

strawberry.enum(
    RequestStatus, name="TransitionStatus", description="Where a stage transition request stands."
)
strawberry.enum(
    GateKind,
    name="QualityGateKind",
    description=(
        "METRIC_THRESHOLD {metric, dataset?, operator: >= > <= <, value}; CARD_SECTION {section};"
        " NO_TAGGED_TRAINING_DATA {key, value}."
    ),
)


@strawberry.type(description="A request to move a model version to a stage, and its decision.")
class StageTransitionRequest(RowNode):
    row_type = StageTransitionRequestRow
    id: relay.NodeID[int]
    from_stage: Stage
    to_stage: Stage
    status: RequestStatus
    comment: str | None  # null where the policy hides it
    requested_at: datetime
    requested_by: str
    decided_at: datetime | None
    decided_by: str | None
    decision_comment: str | None
    project_id: strawberry.Private[int]
    model_id: strawberry.Private[int]
    version_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: StageTransitionRequestRow) -> Self:
        return cls(
            id=row.id,
            from_stage=Stage(row.from_stage),
            to_stage=Stage(row.to_stage),
            status=RequestStatus(row.status),
            comment=row.comment,
            requested_at=row.created_at,
            requested_by=row.created_by,
            decided_at=row.decided_at,
            decided_by=row.decided_by,
            decision_comment=row.decision_comment,
            project_id=row.project_id,
            model_id=row.model_id,
            version_id=row.version_id,
        )

    @strawberry.field
    async def model(self, info: Info) -> ModelRef:
        model: Model = await required_node(info, "Model", self.model_id)
        return model

    @strawberry.field
    async def version(self, info: Info) -> ModelVersionRef:
        version: ModelVersion = await required_node(info, "ModelVersion", self.version_id)
        return version


@strawberry.type(description="A rule a version must pass to enter a stage of its project.")
class QualityGate(RowNode):
    row_type = QualityGateRow
    id: relay.NodeID[int]
    stage: Stage
    kind: GateKind
    parameters: JSON
    rule: str = strawberry.field(description="The rule as a person reads it.")
    created_at: datetime
    created_by: str
    project_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: QualityGateRow) -> Self:
        return cls(
            id=row.id,
            stage=Stage(row.stage),
            kind=GateKind(row.kind),
            parameters=JSON(row.parameters),
            rule=describe(row.kind, row.parameters),
            created_at=row.created_at,
            created_by=row.created_by,
            project_id=row.project_id,
        )


@strawberry.input
class RequestStageTransitionInput:
    version: relay.GlobalID = strawberry.field(description="The model version to move.")
    stage: Stage
    comment: str | None = None


@strawberry.type
class RequestStageTransitionPayload:
    request: StageTransitionRequest


@strawberry.input
class ApproveStageTransitionInput:
    request: relay.GlobalID
    comment: str | None = None


@strawberry.type
class ApproveStageTransitionPayload:
    request: StageTransitionRequest
    model_version: ModelVersionRef = strawberry.field(description="The version, moved.")


@strawberry.input
class RejectStageTransitionInput:
    request: relay.GlobalID
    comment: str | None = None


@strawberry.type
class RejectStageTransitionPayload:
    request: StageTransitionRequest


@strawberry.input
class CancelStageTransitionInput:
    request: relay.GlobalID
    comment: str | None = None


@strawberry.type
class CancelStageTransitionPayload:
    request: StageTransitionRequest


@strawberry.input(description="Fields left out stay as they are.")
class UpdateProjectSettingsInput:
    project: str = strawberry.field(description="The project's name.")
    require_approval: list[Stage] | None = None
    four_eyes: bool | None = None


@strawberry.type
class UpdateProjectSettingsPayload:
    project: ProjectRef


@strawberry.input
class AddQualityGateInput:
    project: str = strawberry.field(description="The project's name.")
    stage: Stage = strawberry.field(description="The gate holds for moves into this stage.")
    kind: GateKind
    parameters: JSON = strawberry.field(description="A JSON object; its keys depend on the kind.")

    def to_catalog(self) -> dict[str, Any]:
        return {"stage": self.stage, "kind": self.kind, "parameters": self.parameters}


@strawberry.type
class AddQualityGatePayload:
    quality_gate: QualityGate


@strawberry.input
class RemoveQualityGateInput:
    id: relay.GlobalID = strawberry.field(description="The quality gate.")


@strawberry.type
class RemoveQualityGatePayload:
    removed_id: relay.GlobalID
