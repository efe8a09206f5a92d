"""Root queries and mutations for projects, models and model versions."""

import math
from collections.abc import Callable
from enum import Enum
from typing import Any

import strawberry
from strawberry import UNSET, relay
from strawberry.scalars import JSON

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode, decode_any
from mlcatalog.api.pagination import Connection, query_connection
from mlcatalog.api.types.common import OrderDirection, Project, TagInput, tag_map
from mlcatalog.api.types.experiments import Run
from mlcatalog.api.types.models import Comment, Model, ModelVersion
from mlcatalog.catalog import experiments, models, projects, versions
from mlcatalog.catalog.errors import invalid
from mlcatalog.catalog.versions import Stage
from mlcatalog.store import queries
from mlcatalog.store.queries import Order
from mlcatalog.store.rows import ModelRow, ProjectRow


def given(**fields: Any) -> dict[str, Any]:
    """The fields a client actually sent (UNSET ones are left alone; null clears)."""
    return {key: value for key, value in fields.items() if value is not UNSET}


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


@strawberry.type
class ModelQueries:
    @strawberry.field(description="A model by its project and name (archived ones too).")
    async def model(self, info: Info, project: str, name: str) -> Model | None:
        async with info.context.loaders.read() as session:
            row = await queries.by_name(session, ModelRow, project, name)
        return Model.from_row(row) if row else None

    @strawberry.field(description="Models, by name unless `orderBy` says otherwise.")
    async def models(
        self,
        info: Info,
        filter: ModelFilter | None = None,
        order_by: ModelOrder | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Model]:
        f = filter or ModelFilter()
        o = order_by or ModelOrder()
        stmt = queries.models_query(
            project=f.project,
            task=f.task,
            owner=f.owner,
            name_contains=f.name_contains,
            tag=(f.tag.key, f.tag.value or None) if f.tag else None,
            stage=f.stage.value if f.stage else None,
            include_archived=f.include_archived,
        )
        desc = o.direction == OrderDirection.DESC
        order = Order((getattr(ModelRow, o.field.value), ModelRow.id), (desc, desc))
        scope = f"models:{o.field.value}:{o.direction.value}"
        return await query_connection(
            info.context.loaders, stmt, order, scope, first, after, Model.from_row
        )

    @strawberry.field
    async def projects(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Project]:
        order = Order((ProjectRow.name, ProjectRow.id), (False, False))
        stmt = queries.projects_query()
        return await query_connection(
            info.context.loaders, stmt, order, "projects", first, after, Project.from_row
        )


@strawberry.input
class CreateProjectInput:
    name: str
    description: str | None = None


@strawberry.type
class CreateProjectPayload:
    project: Project


@strawberry.input
class RegisterModelInput:
    project: str = strawberry.field(description="The project's name.")
    name: str
    description: str | None = None
    owner: str | None = strawberry.field(default=None, description="Defaults to the caller.")
    task: str | None = None
    tags: list[TagInput] | None = None


@strawberry.type
class ModelPayload:
    model: Model


@strawberry.input
class UpdateModelInput:
    id: relay.GlobalID
    description: str | None = UNSET
    owner: str | None = UNSET
    task: str | None = UNSET


@strawberry.input
class ModelIdInput:
    id: relay.GlobalID


@strawberry.type
class DeletePayload:
    deleted_id: relay.GlobalID


@strawberry.input
class ArtifactInput:
    uri: str
    format: str | None = None
    size: float | None = None
    sha256: str | None = None


@strawberry.input
class CodeReferenceInput:
    repository: str | None = None
    commit: str | None = None
    path: str | None = None


@strawberry.input
class PackageInput:
    name: str
    version: str


@strawberry.input
class EnvironmentInput:
    python_version: str | None = None
    packages: list[PackageInput] | None = None
    container_image: str | None = None


@strawberry.input(
    description="One value; `dataset` (a split label) and/or `datasetVersion` say on what."
)
class MetricInput:
    name: str
    value: float
    step: int | None = None
    dataset: str | None = None
    dataset_version: relay.GlobalID | None = None


@strawberry.input
class CreateModelVersionInput:
    model: relay.GlobalID
    version: str | None = strawberry.field(
        default=None, description="A semantic version, e.g. 1.2.0."
    )
    description: str | None = None
    stage: Stage = Stage.NONE
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


@strawberry.type
class ModelVersionPayload:
    model_version: ModelVersion


@strawberry.input
class UpdateModelVersionInput:
    id: relay.GlobalID
    description: str | None = UNSET
    version: str | None = UNSET
    framework: str | None = UNSET
    framework_version: str | None = UNSET
    algorithm: str | None = UNSET
    hyperparameters: JSON | None = UNSET


@strawberry.input(description="Metrics for a model version or a run (by the id's type).")
class LogMetricsInput:
    id: relay.GlobalID
    metrics: list[MetricInput]


@strawberry.type
class LogMetricsPayload:
    model_version: ModelVersion | None
    run: Run | None


@strawberry.input
class SetTagsInput:
    id: relay.GlobalID = strawberry.field(description="A Model, ModelVersion or Dataset.")
    tags: list[TagInput]


@strawberry.input
class RemoveTagsInput:
    id: relay.GlobalID
    keys: list[str]


@strawberry.type
class TagsPayload:
    node: relay.Node


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
    archived: list[ModelVersion]


@strawberry.input
class SetAliasInput:
    id: relay.GlobalID = strawberry.field(description="The model version the alias points at.")
    alias: str


@strawberry.input
class RemoveAliasInput:
    model: relay.GlobalID
    alias: str


@strawberry.input
class AddCommentInput:
    id: relay.GlobalID = strawberry.field(description="The model version.")
    body: str


@strawberry.type
class AddCommentPayload:
    comment: Comment
    model_version: ModelVersion


def whole(value: float | None, field: str) -> int | None:
    """GraphQL Int has 32 bits; sizes travel as Float and must be whole numbers."""
    if value is None:
        return None
    if not math.isfinite(value) or value != int(value):
        raise invalid(f"{field} must be a whole number")
    return int(value)


def metric_values(metrics: list[MetricInput]) -> list[versions.MetricValue]:
    return [
        versions.MetricValue(
            name=m.name,
            value=m.value,
            step=m.step,
            dataset=m.dataset,
            dataset_version_id=decode(m.dataset_version, "DatasetVersion")
            if m.dataset_version
            else None,
        )
        for m in metrics
    ]


async def tagged_node(info: Info, entity_type: str, row: Any) -> relay.Node:
    from mlcatalog.api.types.datasets import Dataset  # cyclic: datasets imports models

    builders: dict[str, Callable[[Any], relay.Node]] = {
        "Model": Model.from_row,
        "ModelVersion": ModelVersion.from_row,
        "Dataset": Dataset.from_row,
    }
    node: relay.Node = builders[entity_type](row)
    return node


@strawberry.type
class ModelMutations:
    @strawberry.mutation
    async def create_project(self, info: Info, input: CreateProjectInput) -> CreateProjectPayload:
        async with info.context.unit_of_work() as uow:
            row = await projects.create_project(uow, name=input.name, description=input.description)
        return CreateProjectPayload(project=Project.from_row(row))

    @strawberry.mutation
    async def register_model(self, info: Info, input: RegisterModelInput) -> ModelPayload:
        async with info.context.unit_of_work() as uow:
            project = await projects.project_by_name(uow, input.project)
            row = await models.register_model(
                uow,
                project_id=project.id,
                name=input.name,
                owner=input.owner,
                description=input.description,
                task=input.task,
                tags=tag_map(input.tags),
            )
        return ModelPayload(model=Model.from_row(row))

    @strawberry.mutation(description="Change description, owner or task; omitted fields stay.")
    async def update_model(self, info: Info, input: UpdateModelInput) -> ModelPayload:
        changes = given(description=input.description, owner=input.owner, task=input.task)
        async with info.context.unit_of_work() as uow:
            row = await models.update_model(
                uow, model_id=decode(input.id, "Model"), changes=changes
            )
        return ModelPayload(model=Model.from_row(row))

    @strawberry.mutation(description="Hide a model from lists (restorable).")
    async def archive_model(self, info: Info, input: ModelIdInput) -> ModelPayload:
        async with info.context.unit_of_work() as uow:
            row = await models.set_archived(uow, model_id=decode(input.id, "Model"), archived=True)
        return ModelPayload(model=Model.from_row(row))

    @strawberry.mutation
    async def restore_model(self, info: Info, input: ModelIdInput) -> ModelPayload:
        async with info.context.unit_of_work() as uow:
            row = await models.set_archived(uow, model_id=decode(input.id, "Model"), archived=False)
        return ModelPayload(model=Model.from_row(row))

    @strawberry.mutation(
        description="Delete a model and its versions for good; the journal keeps the record."
    )
    async def delete_model(self, info: Info, input: ModelIdInput) -> DeletePayload:
        async with info.context.unit_of_work() as uow:
            await models.delete_model(uow, model_id=decode(input.id, "Model"))
        return DeletePayload(deleted_id=input.id)

    @strawberry.mutation
    async def create_model_version(
        self, info: Info, input: CreateModelVersionInput
    ) -> ModelVersionPayload:
        artifact = input.artifact
        environment = input.environment
        async with info.context.unit_of_work() as uow:
            row = await versions.create_model_version(
                uow,
                model_id=decode(input.model, "Model"),
                semver=input.version,
                description=input.description,
                stage=input.stage,
                artifact=versions.Artifact(
                    uri=artifact.uri,
                    format=artifact.format,
                    size=whole(artifact.size, "artifact size"),
                    sha256=artifact.sha256,
                )
                if artifact
                else None,
                framework=input.framework,
                framework_version=input.framework_version,
                algorithm=input.algorithm,
                hyperparameters=input.hyperparameters,
                tags=tag_map(input.tags),
                metrics=metric_values(input.metrics or []),
                code=versions.CodeReference(
                    repository=input.code.repository, commit=input.code.commit, path=input.code.path
                )
                if input.code
                else None,
                environment=versions.Environment(
                    python_version=environment.python_version,
                    packages={p.name: p.version for p in environment.packages or ()},
                    container_image=environment.container_image,
                )
                if environment
                else None,
                source_run_id=decode(input.source_run, "Run") if input.source_run else None,
                training_dataset_version_ids=[
                    decode(i, "DatasetVersion") for i in input.training_datasets or ()
                ],
                evaluation_dataset_version_ids=[
                    decode(i, "DatasetVersion") for i in input.evaluation_datasets or ()
                ],
            )
        return ModelVersionPayload(model_version=ModelVersion.from_row(row))

    @strawberry.mutation
    async def update_model_version(
        self, info: Info, input: UpdateModelVersionInput
    ) -> ModelVersionPayload:
        changes = given(
            description=input.description,
            semver=input.version,
            framework=input.framework,
            framework_version=input.framework_version,
            algorithm=input.algorithm,
            hyperparameters=input.hyperparameters,
        )
        async with info.context.unit_of_work() as uow:
            row = await versions.update_model_version(
                uow, version_id=decode(input.id, "ModelVersion"), changes=changes
            )
        return ModelVersionPayload(model_version=ModelVersion.from_row(row))

    @strawberry.mutation(description="Delete one version for good; the journal keeps the record.")
    async def delete_model_version(self, info: Info, input: ModelIdInput) -> DeletePayload:
        async with info.context.unit_of_work() as uow:
            await versions.delete_model_version(uow, version_id=decode(input.id, "ModelVersion"))
        return DeletePayload(deleted_id=input.id)

    @strawberry.mutation
    async def log_metrics(self, info: Info, input: LogMetricsInput) -> LogMetricsPayload:
        entity_type, entity_id = decode_any(input.id, "ModelVersion", "Run")
        async with info.context.unit_of_work() as uow:
            if entity_type == "Run":
                run = await experiments.log_run_metrics(
                    uow,
                    run_id=entity_id,
                    metrics=[experiments.RunMetric(m.name, m.value, m.step) for m in input.metrics],
                )
                return LogMetricsPayload(model_version=None, run=Run.from_row(run))
            version = await versions.log_metrics(
                uow, version_id=entity_id, metrics=metric_values(input.metrics)
            )
        return LogMetricsPayload(model_version=ModelVersion.from_row(version), run=None)

    @strawberry.mutation(
        description="Add or overwrite tags on a model, a model version or a dataset."
    )
    async def set_tags(self, info: Info, input: SetTagsInput) -> TagsPayload:
        entity_type, entity_id = decode_any(input.id, "Model", "ModelVersion", "Dataset")
        async with info.context.unit_of_work() as uow:
            row = await models.set_tags(
                uow, entity_type=entity_type, entity_id=entity_id, tags=tag_map(input.tags)
            )
        return TagsPayload(node=await tagged_node(info, entity_type, row))

    @strawberry.mutation
    async def remove_tags(self, info: Info, input: RemoveTagsInput) -> TagsPayload:
        entity_type, entity_id = decode_any(input.id, "Model", "ModelVersion", "Dataset")
        async with info.context.unit_of_work() as uow:
            row = await models.remove_tags(
                uow, entity_type=entity_type, entity_id=entity_id, keys=input.keys
            )
        return TagsPayload(node=await tagged_node(info, entity_type, row))

    @strawberry.mutation
    async def set_model_version_stage(
        self, info: Info, input: SetModelVersionStageInput
    ) -> SetModelVersionStagePayload:
        async with info.context.unit_of_work() as uow:
            changed = await versions.set_stage(
                uow,
                version_id=decode(input.id, "ModelVersion"),
                stage=input.stage,
                archive_others=input.archive_others,
            )
        return SetModelVersionStagePayload(
            model_version=ModelVersion.from_row(changed.version),
            archived=[ModelVersion.from_row(row) for row in changed.archived],
        )

    @strawberry.mutation(
        description="Point an alias at a version; it moves if another version had it."
    )
    async def set_alias(self, info: Info, input: SetAliasInput) -> ModelVersionPayload:
        async with info.context.unit_of_work() as uow:
            row = await versions.set_alias(
                uow, version_id=decode(input.id, "ModelVersion"), alias=input.alias
            )
        return ModelVersionPayload(model_version=ModelVersion.from_row(row))

    @strawberry.mutation
    async def remove_alias(self, info: Info, input: RemoveAliasInput) -> ModelPayload:
        async with info.context.unit_of_work() as uow:
            row = await versions.remove_alias(
                uow, model_id=decode(input.model, "Model"), alias=input.alias
            )
        return ModelPayload(model=Model.from_row(row))

    @strawberry.mutation
    async def add_comment(self, info: Info, input: AddCommentInput) -> AddCommentPayload:
        async with info.context.unit_of_work() as uow:
            version_id = decode(input.id, "ModelVersion")
            row, version = await versions.add_comment(uow, version_id=version_id, body=input.body)
        return AddCommentPayload(
            comment=Comment.from_row(row), model_version=ModelVersion.from_row(version)
        )
