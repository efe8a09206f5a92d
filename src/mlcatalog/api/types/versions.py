"""Model versions with their artifacts, metrics, aliases and comments; the inputs and payloads of
the version mutations, each mapped once to what the catalog takes."""

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Self

import strawberry
from strawberry import UNSET, relay
from strawberry.scalars import JSON

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode
from mlcatalog.api.limits import cap, capped
from mlcatalog.api.pagination import Connection, children_connection
from mlcatalog.api.types.common import RowNode, given, load_node, load_nodes, required_node, whole
from mlcatalog.api.types.documents import Document
from mlcatalog.api.types.lifecycle import (
    AliasChange,
    Deployment,
    StageChange,
    deployment_filters,
    journal_changes,
)
from mlcatalog.api.types.models import Model
from mlcatalog.api.types.tags import Tag, TagInput, tag_list
from mlcatalog.catalog import versions
from mlcatalog.catalog.deployments import DeploymentStatus
from mlcatalog.catalog.versions import Stage
from mlcatalog.store import history
from mlcatalog.store.paging import (
    COMMENTS_OF_VERSION,
    DEPLOYMENTS_OF_VERSION,
    METRICS_OF_VERSION,
)
from mlcatalog.store.rows import CommentRow, MetricRow, ModelVersionRow

if TYPE_CHECKING:
    from mlcatalog.api.types.datasets import DatasetVersion
    from mlcatalog.api.types.experiments import Run

DatasetVersionRef = Annotated["DatasetVersion", strawberry.lazy("mlcatalog.api.types.datasets")]
RunRef = Annotated["Run", strawberry.lazy("mlcatalog.api.types.experiments")]


@strawberry.enum(description="What a dataset version was to a model version.")
class DatasetRole(Enum):
    TRAINING = "TRAINED_ON"
    EVALUATION = "EVALUATED_ON"


@strawberry.type(description="Where the model's weights are and how to check them.")
class Artifact:
    uri: str | None  # null where the policy hides it (a sensitive field)
    format: str | None
    size: float | None = strawberry.field(description="Bytes (Float: sizes exceed 32 bits).")
    sha256: str | None


@strawberry.type(description="The code that produced a version.")
class CodeReference:
    repository: str | None
    commit: str | None
    path: str | None


@strawberry.type
class Package:
    name: str
    version: str


@strawberry.type(description="What a version needs to run.")
class Environment:
    python_version: str | None
    packages: list[Package]
    container_image: str | None


@strawberry.type(
    description="One measured value: a metric on a dataset (version or split), at a step."
)
class Metric:
    name: str
    value: float
    step: int | None
    dataset: str | None = strawberry.field(description="The split or dataset version measured on.")
    created_at: datetime
    created_by: str
    dataset_version_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: MetricRow) -> Self:
        return cls(
            name=row.name,
            value=row.value,
            step=row.step,
            dataset=row.dataset,
            created_at=row.created_at,
            created_by=row.created_by,
            dataset_version_id=row.dataset_version_id,
        )

    @strawberry.field
    async def dataset_version(self, info: Info) -> DatasetVersionRef | None:
        if self.dataset_version_id is None:
            return None
        version: DatasetVersion | None = await load_node(
            info, "DatasetVersion", self.dataset_version_id
        )
        return version


@strawberry.type(description="Feedback on a model version.")
class Comment(RowNode):
    row_type = CommentRow
    id: relay.NodeID[int]
    body: str | None  # null where the policy hides it
    created_at: datetime
    created_by: str
    version_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: CommentRow) -> Self:
        return cls(
            id=row.id,
            body=row.body,
            created_at=row.created_at,
            created_by=row.created_by,
            version_id=row.version_id,
        )


@strawberry.type(description="One version of a registered model.")
class ModelVersion(RowNode):
    row_type = ModelVersionRow
    id: relay.NodeID[int]
    number: int = strawberry.field(description="1, 2, 3… per model, without gaps.")
    version: str | None = strawberry.field(description="The semantic version, when given.")
    stage: Stage
    description: str
    framework: str | None
    framework_version: str | None
    algorithm: str | None
    hyperparameters: JSON | None  # null where the policy hides it
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    row: strawberry.Private[ModelVersionRow]

    @classmethod
    def from_row(cls, row: ModelVersionRow) -> Self:
        return cls(
            id=row.id,
            number=row.number,
            version=row.semver,
            stage=Stage(row.stage),
            description=row.description,
            framework=row.framework,
            framework_version=row.framework_version,
            algorithm=row.algorithm,
            hyperparameters=JSON(row.hyperparameters),
            created_at=row.created_at,
            created_by=row.created_by,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
            row=row,
        )

    @strawberry.field
    async def model(self, info: Info) -> Model:
        model: Model = await required_node(info, "Model", self.row.model_id)
        return model

    @strawberry.field
    def artifact(self) -> Artifact | None:
        r = self.row
        if r.artifact_uri is None:
            return None
        size = float(r.artifact_size) if r.artifact_size is not None else None
        return Artifact(
            uri=r.artifact_uri, format=r.artifact_format, size=size, sha256=r.artifact_sha256
        )

    @strawberry.field
    def code(self) -> CodeReference | None:
        r = self.row
        if r.code_repository is None and r.code_commit is None and r.code_path is None:
            return None
        return CodeReference(repository=r.code_repository, commit=r.code_commit, path=r.code_path)

    @strawberry.field
    def environment(self) -> Environment | None:
        r = self.row
        if r.python_version is None and not r.packages and r.container_image is None:
            return None
        return Environment(
            python_version=r.python_version,
            packages=[
                Package(name=n, version=v)
                for n, v in capped("Environment.packages", sorted(r.packages.items()))
            ],
            container_image=r.container_image,
        )

    @strawberry.field
    async def aliases(self, info: Info) -> list[str]:
        rows = await info.context.loaders.aliases("version", self.id)
        return [row.name for row in capped("ModelVersion.aliases", rows)]

    @strawberry.field
    async def tags(self, info: Info) -> list[Tag]:
        return tag_list(await info.context.loaders.tags("ModelVersion", self.id))

    @strawberry.field(description="Every logged value, by name; `name` keeps one metric's history.")
    async def metrics(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        name: str | None = None,
    ) -> Connection[Metric]:
        return await children_connection(
            info.context.loaders,
            METRICS_OF_VERSION,
            self.id,
            Metric.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
            filters=(("name", name),),
        )

    @strawberry.field(
        description="One metric's value on one dataset (the newest step), for leaderboards."
    )
    async def metric(self, info: Info, name: str, dataset: str | None = None) -> float | None:
        row = await info.context.loaders.metric(self.id, name, dataset)
        return row.value if row else None

    @strawberry.field(description="The run that trained this version.")
    async def source_run(self, info: Info) -> RunRef | None:
        if self.row.source_run_id is None:
            return None
        run: Run | None = await load_node(info, "Run", self.row.source_run_id)
        return run

    @strawberry.field(description="Dataset versions this version was trained or evaluated on.")
    async def datasets(
        self, info: Info, role: DatasetRole | None = None
    ) -> list[DatasetVersionRef]:
        kinds = {role.value} if role else {r.value for r in DatasetRole}
        edges = await info.context.loaders.edges(
            "target", "ModelVersion", self.id, per_kind=cap("ModelVersion.datasets")
        )
        ids = [e.source_id for e in edges if e.kind in kinds]
        return await load_nodes(info, "DatasetVersion", capped("ModelVersion.datasets", ids))

    @strawberry.field(description="Its stage moves, newest first, from the journal.")
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
            version_id=self.id,
            first=first,
            after=after,
            last=last,
            before=before,
        )

    @strawberry.field(
        description="Aliases set on it, moved onto it or removed from it, newest first (a move"
        " away shows in the history of the version it moved to, and the model's)."
    )
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
            version_id=self.id,
            first=first,
            after=after,
            last=last,
            before=before,
        )

    @strawberry.field(description="Where it runs; `environment` and `statuses` narrow the list.")
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
            DEPLOYMENTS_OF_VERSION,
            self.id,
            Deployment.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
            filters=deployment_filters(environment, statuses),
        )

    @strawberry.field(description="The version's own card (the model has one too).")
    async def card(self, info: Info) -> Document | None:
        row = await info.context.loaders.document("ModelVersion", self.id)
        return Document.from_row(row) if row else None

    @strawberry.field(description="Feedback, oldest first (null where the policy hides it).")
    async def comments(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Comment] | None:  # null where the policy hides comments
        return await children_connection(
            info.context.loaders,
            COMMENTS_OF_VERSION,
            self.id,
            Comment.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )


@strawberry.input
class ArtifactInput:
    uri: str
    format: str | None = None
    size: float | None = strawberry.field(default=None, description="Bytes, a whole number.")
    sha256: str | None = None

    def to_catalog(self) -> versions.Artifact:
        return versions.Artifact(
            uri=self.uri,
            format=self.format,
            size=whole(self.size, "artifact size"),
            sha256=self.sha256,
        )


@strawberry.input
class CodeReferenceInput:
    repository: str | None = None
    commit: str | None = None
    path: str | None = None

    def to_catalog(self) -> versions.CodeReference:
        return versions.CodeReference(
            repository=self.repository, commit=self.commit, path=self.path
        )


@strawberry.input
class PackageInput:
    name: str
    version: str


@strawberry.input
class EnvironmentInput:
    python_version: str | None = None
    packages: list[PackageInput] | None = None
    container_image: str | None = None

    def to_catalog(self) -> versions.Environment:
        return versions.Environment(
            python_version=self.python_version,
            packages={p.name: p.version for p in self.packages or ()},
            container_image=self.container_image,
        )


@strawberry.input(
    description="One value; `dataset` (a split label) and/or `datasetVersion` say on what."
)
class MetricInput:
    name: str
    value: float
    step: int | None = None
    dataset: str | None = None
    dataset_version: relay.GlobalID | None = None

    def to_catalog(self) -> versions.MetricValue:
        return versions.MetricValue(
            name=self.name,
            value=self.value,
            step=self.step,
            dataset=self.dataset,
            dataset_version_id=decode(self.dataset_version, "DatasetVersion")
            if self.dataset_version
            else None,
        )


@strawberry.input
class CreateModelVersionInput:
    model: relay.GlobalID
    version: str | None = strawberry.field(
        default=None, description="A semantic version, e.g. 1.2.0."
    )
    description: str | None = None
    stage: Stage = strawberry.field(
        default=Stage.NONE,
        description="Creating in a stage enters it: its quality gates must hold, and a stage"
        " the project requires approval for is refused (create earlier, then request the move).",
    )
    artifact: ArtifactInput | None = None
    framework: str | None = None
    framework_version: str | None = None
    algorithm: str | None = None
    hyperparameters: JSON | None = strawberry.field(default=None, description="A JSON object.")
    tags: list[TagInput] | None = None
    metrics: list[MetricInput] | None = None
    code: CodeReferenceInput | None = None
    environment: EnvironmentInput | None = None
    source_run: relay.GlobalID | None = None
    training_datasets: list[relay.GlobalID] | None = None
    evaluation_datasets: list[relay.GlobalID] | None = None

    def to_catalog(self) -> dict[str, Any]:
        """The keyword arguments of ``versions.create_model_version``."""
        return {
            "model_id": decode(self.model, "Model"),
            "semver": self.version,
            "description": self.description,
            "stage": self.stage,
            "artifact": self.artifact.to_catalog() if self.artifact else None,
            "framework": self.framework,
            "framework_version": self.framework_version,
            "algorithm": self.algorithm,
            "hyperparameters": self.hyperparameters,
            "tags": {tag.key: tag.value for tag in self.tags or ()},
            "metrics": [m.to_catalog() for m in self.metrics or ()],
            "code": self.code.to_catalog() if self.code else None,
            "environment": self.environment.to_catalog() if self.environment else None,
            "source_run_id": decode(self.source_run, "Run") if self.source_run else None,
            "training_dataset_version_ids": [
                decode(i, "DatasetVersion") for i in self.training_datasets or ()
            ],
            "evaluation_dataset_version_ids": [
                decode(i, "DatasetVersion") for i in self.evaluation_datasets or ()
            ],
        }


@strawberry.type
class CreateModelVersionPayload:
    model_version: ModelVersion


@strawberry.input(
    description="Many versions in one transaction, all or none: a bad item refuses the request,"
    " naming its index (versions[i]). Each item is created in stage NONE: a stage's approval rule"
    " and quality gates are checked version by version, so move versions afterwards."
)
class RegisterModelVersionsInput:
    versions: list[CreateModelVersionInput]
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Retrying with the same key (within 24 hours) returns the first result and"
        " writes nothing; the same key with another request is CONFLICT.",
    )


@strawberry.type
class RegisterModelVersionsPayload:
    model_versions: list[ModelVersion] = strawberry.field(description="In the order given.")
    replayed: bool = strawberry.field(
        description="True when the idempotency key had been used: these are the first result."
    )


@strawberry.input(description="Fields left out stay as they are; null clears one.")
class UpdateModelVersionInput:
    id: relay.GlobalID
    description: str | None = UNSET
    version: str | None = UNSET
    framework: str | None = UNSET
    framework_version: str | None = UNSET
    algorithm: str | None = UNSET
    hyperparameters: JSON | None = UNSET

    def changes(self) -> dict[str, Any]:
        """The ``changes`` of ``versions.update_model_version``: only the fields sent."""
        return given(
            description=self.description,
            semver=self.version,
            framework=self.framework,
            framework_version=self.framework_version,
            algorithm=self.algorithm,
            hyperparameters=self.hyperparameters,
        )


@strawberry.type
class UpdateModelVersionPayload:
    model_version: ModelVersion


@strawberry.input
class DeleteModelVersionInput:
    id: relay.GlobalID = strawberry.field(description="The model version.")


@strawberry.type
class DeleteModelVersionPayload:
    deleted_id: relay.GlobalID


@strawberry.input(description="Metrics for a model version or a run (by the id's type).")
class LogMetricsInput:
    id: relay.GlobalID
    metrics: list[MetricInput]


@strawberry.type
class LogMetricsPayload:
    model_version: ModelVersion | None
    run: RunRef | None


@strawberry.input
class SetModelVersionStageInput:
    id: relay.GlobalID
    stage: Stage
    archive_others: bool = strawberry.field(
        default=False, description="Archive the model's other versions in this stage."
    )


@strawberry.type
class SetModelVersionStagePayload:
    model_version: ModelVersion
    archived: list[ModelVersion] = strawberry.field(
        description="The model's other versions this move archived."
    )


@strawberry.input
class SetAliasInput:
    id: relay.GlobalID = strawberry.field(description="The model version the alias points at.")
    alias: str


@strawberry.type
class SetAliasPayload:
    model_version: ModelVersion


@strawberry.input
class RemoveAliasInput:
    model: relay.GlobalID
    alias: str


@strawberry.type
class RemoveAliasPayload:
    model: Model


@strawberry.input
class AddCommentInput:
    id: relay.GlobalID = strawberry.field(description="The model version.")
    body: str


@strawberry.type
class AddCommentPayload:
    comment: Comment
    model_version: ModelVersion
