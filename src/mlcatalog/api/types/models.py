"""Registered models and their versions, metrics, aliases and comments."""

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from mlcatalog.api.context import Info
from mlcatalog.api.limits import capped
from mlcatalog.api.loaders import COMMENTS_OF_VERSION, METRICS_OF_VERSION, VERSIONS_OF_MODEL
from mlcatalog.api.pagination import Connection, children_connection
from mlcatalog.api.types.common import Project, RowNode, Tag, project_of, tag_list
from mlcatalog.api.types.documents import Document
from mlcatalog.catalog.versions import Stage
from mlcatalog.store.rows import (
    AliasRow,
    CommentRow,
    DatasetVersionRow,
    MetricRow,
    ModelRow,
    ModelVersionRow,
    RunRow,
)

if TYPE_CHECKING:
    from mlcatalog.api.types.datasets import DatasetVersion
    from mlcatalog.api.types.experiments import Run

DatasetVersionRef = Annotated["DatasetVersion", strawberry.lazy("mlcatalog.api.types.datasets")]
RunRef = Annotated["Run", strawberry.lazy("mlcatalog.api.types.experiments")]


@strawberry.enum(description="What a dataset version was to a model version.")
class DatasetRole(Enum):
    TRAINING = "TRAINED_ON"
    EVALUATION = "EVALUATED_ON"


@strawberry.type(description="A registered model: a name in a project, and its versions.")
class Model(RowNode):
    row_type = ModelRow
    id: relay.NodeID[int]
    name: str
    description: str
    owner: str
    task: str | None
    archived_at: datetime | None
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
        stages: list[Stage] | None = None,
    ) -> Connection["ModelVersion"]:
        filters = (("stages", tuple(s.value for s in stages or ())),)
        return await children_connection(
            info.context.loaders,
            VERSIONS_OF_MODEL,
            self.id,
            first,
            after,
            ModelVersion.from_row,
            filters,
        )

    @strawberry.field(description="The version with the highest number.")
    async def latest_version(self, info: Info) -> "ModelVersion | None":
        row = await info.context.loaders.latest_version(self.id)
        return ModelVersion.from_row(row) if row else None

    @strawberry.field(description="The newest version in PRODUCTION, if any.")
    async def production_version(self, info: Info) -> "ModelVersion | None":
        row = await info.context.loaders.latest_version(self.id, Stage.PRODUCTION.value)
        return ModelVersion.from_row(row) if row else None

    @strawberry.field(description="Named pointers such as champion and challenger.")
    async def aliases(self, info: Info) -> list["Alias"]:
        rows = await info.context.loaders.aliases(AliasRow.model_id, self.id)
        return [
            Alias(name=row.name, version_id=row.version_id) for row in capped("Model.aliases", rows)
        ]

    @strawberry.field(description="The model card.")
    async def card(self, info: Info) -> Document | None:
        row = await info.context.loaders.document("Model", self.id)
        return Document.from_row(row) if row else None


@strawberry.type(description="A name that points at one version of a model.")
class Alias:
    name: str
    version_id: strawberry.Private[int]

    @strawberry.field
    async def version(self, info: Info) -> "ModelVersion":
        row = await info.context.loaders.row(ModelVersionRow, self.version_id)
        assert row is not None
        return ModelVersion.from_row(row)


@strawberry.type(description="Where the model's weights are and how to check them.")
class Artifact:
    uri: str
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
        from mlcatalog.api.types.datasets import DatasetVersion

        if self.dataset_version_id is None:
            return None
        row = await info.context.loaders.row(DatasetVersionRow, self.dataset_version_id)
        return DatasetVersion.from_row(row) if row else None


@strawberry.type(description="Feedback on a model version.")
class Comment(RowNode):
    row_type = CommentRow
    id: relay.NodeID[int]
    body: str
    created_at: datetime
    created_by: str

    @classmethod
    def from_row(cls, row: CommentRow) -> Self:
        return cls(id=row.id, body=row.body, created_at=row.created_at, created_by=row.created_by)


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
    hyperparameters: JSON
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
        row = await info.context.loaders.row(ModelRow, self.row.model_id)
        assert row is not None
        return Model.from_row(row)

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
        rows = await info.context.loaders.aliases(AliasRow.version_id, self.id)
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
        name: str | None = None,
    ) -> Connection[Metric]:
        return await children_connection(
            info.context.loaders,
            METRICS_OF_VERSION,
            self.id,
            first,
            after,
            Metric.from_row,
            (("name", name),),
        )

    @strawberry.field(
        description="One metric's value on one dataset (the newest step), for leaderboards."
    )
    async def metric(self, info: Info, name: str, dataset: str | None = None) -> float | None:
        row = await info.context.loaders.metric(self.id, name, dataset)
        return row.value if row else None

    @strawberry.field(description="The run that trained this version.")
    async def source_run(self, info: Info) -> RunRef | None:
        from mlcatalog.api.types.experiments import Run

        if self.row.source_run_id is None:
            return None
        row = await info.context.loaders.row(RunRow, self.row.source_run_id)
        return Run.from_row(row) if row else None

    @strawberry.field(description="Dataset versions this version was trained or evaluated on.")
    async def datasets(
        self, info: Info, role: DatasetRole | None = None
    ) -> list[DatasetVersionRef]:
        from mlcatalog.api.types.datasets import DatasetVersion

        kinds = {role.value} if role else {r.value for r in DatasetRole}
        edges = await info.context.loaders.edges("target", "ModelVersion", self.id)
        ids = [e.source_id for e in edges if e.kind in kinds and e.source_type == "DatasetVersion"]
        ids = capped("ModelVersion.datasets", list(dict.fromkeys(ids)))
        rows = await info.context.loaders.rows(DatasetVersionRow, ids)
        return [DatasetVersion.from_row(row) for row in rows if row is not None]

    @strawberry.field(description="The version's own card (the model has one too).")
    async def card(self, info: Info) -> Document | None:
        row = await info.context.loaders.document("ModelVersion", self.id)
        return Document.from_row(row) if row else None

    @strawberry.field(description="Feedback, oldest first.")
    async def comments(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Comment]:
        return await children_connection(
            info.context.loaders, COMMENTS_OF_VERSION, self.id, first, after, Comment.from_row
        )
