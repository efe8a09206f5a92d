"""Mutations on model versions: create, update, delete, metrics, stages, aliases, comments."""

import strawberry

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode, decode_any
from mlcatalog.api.limits import capped
from mlcatalog.api.types.experiments import Run
from mlcatalog.api.types.models import Model
from mlcatalog.api.types.versions import (
    AddCommentInput,
    AddCommentPayload,
    Comment,
    CreateModelVersionInput,
    CreateModelVersionPayload,
    DeleteModelVersionInput,
    DeleteModelVersionPayload,
    LogMetricsInput,
    LogMetricsPayload,
    ModelVersion,
    RegisterModelVersionsInput,
    RegisterModelVersionsPayload,
    RemoveAliasInput,
    RemoveAliasPayload,
    SetAliasInput,
    SetAliasPayload,
    SetModelVersionStageInput,
    SetModelVersionStagePayload,
    UpdateModelVersionInput,
    UpdateModelVersionPayload,
)
from mlcatalog.catalog import approvals, experiments, idempotency, versions
from mlcatalog.catalog.errors import invalid


@strawberry.type
class VersionMutations:
    @strawberry.mutation
    async def create_model_version(
        self, info: Info, input: CreateModelVersionInput
    ) -> CreateModelVersionPayload:
        arguments = input.to_catalog()
        async with info.context.unit_of_work() as uow:
            row = await approvals.create_version(uow, **arguments)
        return CreateModelVersionPayload(model_version=ModelVersion.from_row(row))

    @strawberry.mutation(
        description="Register many versions at once, in one transaction: all or none."
    )
    async def register_model_versions(
        self, info: Info, input: RegisterModelVersionsInput
    ) -> RegisterModelVersionsPayload:
        items = [item.to_catalog() for item in input.versions]
        key = input.idempotency_key
        async with info.context.unit_of_work() as uow:
            if key is not None:
                sha256 = idempotency.fingerprint(items)
                if ids := await idempotency.replay(uow, key=key, request_sha256=sha256):
                    rows = await versions.load_versions(uow, ids)
                    return RegisterModelVersionsPayload(
                        model_versions=[ModelVersion.from_row(row) for row in rows], replayed=True
                    )
            rows = await versions.register_model_versions(uow, versions=items)
            if key is not None:
                ids = [row.id for row in rows]
                await idempotency.remember(uow, key=key, request_sha256=sha256, ids=ids)
        return RegisterModelVersionsPayload(
            model_versions=[ModelVersion.from_row(row) for row in rows], replayed=False
        )

    @strawberry.mutation
    async def update_model_version(
        self, info: Info, input: UpdateModelVersionInput
    ) -> UpdateModelVersionPayload:
        async with info.context.unit_of_work() as uow:
            row = await versions.update_model_version(
                uow, version_id=decode(input.id, "ModelVersion"), changes=input.changes()
            )
        return UpdateModelVersionPayload(model_version=ModelVersion.from_row(row))

    @strawberry.mutation(description="Delete one version for good; the journal keeps the record.")
    async def delete_model_version(
        self, info: Info, input: DeleteModelVersionInput
    ) -> DeleteModelVersionPayload:
        async with info.context.unit_of_work() as uow:
            await versions.delete_model_version(uow, version_id=decode(input.id, "ModelVersion"))
        return DeleteModelVersionPayload(deleted_id=input.id)

    @strawberry.mutation
    async def log_metrics(self, info: Info, input: LogMetricsInput) -> LogMetricsPayload:
        entity_type, entity_id = decode_any(input.id, "ModelVersion", "Run")
        if entity_type == "Run":
            if any(m.dataset is not None or m.dataset_version is not None for m in input.metrics):
                raise invalid("a run's metrics are logged by step; dataset is for model versions")
            run_metrics = [experiments.RunMetric(m.name, m.value, m.step) for m in input.metrics]
            async with info.context.unit_of_work() as uow:
                run = await experiments.log_run_metrics(uow, run_id=entity_id, metrics=run_metrics)
            return LogMetricsPayload(model_version=None, run=Run.from_row(run))
        metrics = [m.to_catalog() for m in input.metrics]
        async with info.context.unit_of_work() as uow:
            version = await versions.log_metrics(uow, version_id=entity_id, metrics=metrics)
        return LogMetricsPayload(model_version=ModelVersion.from_row(version), run=None)

    @strawberry.mutation(
        description="Move a version one stage: NONE → DEVELOPMENT → STAGING → PRODUCTION, back"
        " one step from STAGING or PRODUCTION, to ARCHIVED from anywhere, from ARCHIVED to"
        " DEVELOPMENT. Promoting to PRODUCTION archives the versions there unless the model"
        " allows several. Needs write on Stage.<from> and Stage.<to> in the policy. The stage's"
        " quality gates must hold; a stage the project requires approval for is entered through"
        " requestStageTransition."
    )
    async def set_model_version_stage(
        self, info: Info, input: SetModelVersionStageInput
    ) -> SetModelVersionStagePayload:
        async with info.context.unit_of_work() as uow:
            changed = await approvals.move_stage(
                uow,
                version_id=decode(input.id, "ModelVersion"),
                stage=input.stage,
                archive_others=input.archive_others,
            )
        return SetModelVersionStagePayload(
            model_version=ModelVersion.from_row(changed.version),
            archived=[
                ModelVersion.from_row(row)
                for row in capped("SetModelVersionStagePayload.archived", changed.archived)
            ],
        )

    @strawberry.mutation(
        description="Point an alias at a version; it moves if another version had it."
    )
    async def set_alias(self, info: Info, input: SetAliasInput) -> SetAliasPayload:
        async with info.context.unit_of_work() as uow:
            row = await versions.set_alias(
                uow, version_id=decode(input.id, "ModelVersion"), alias=input.alias
            )
        return SetAliasPayload(model_version=ModelVersion.from_row(row))

    @strawberry.mutation
    async def remove_alias(self, info: Info, input: RemoveAliasInput) -> RemoveAliasPayload:
        async with info.context.unit_of_work() as uow:
            row = await versions.remove_alias(
                uow, model_id=decode(input.model, "Model"), alias=input.alias
            )
        return RemoveAliasPayload(model=Model.from_row(row))

    @strawberry.mutation
    async def add_comment(self, info: Info, input: AddCommentInput) -> AddCommentPayload:
        version_id = decode(input.id, "ModelVersion")
        async with info.context.unit_of_work() as uow:
            row, version = await versions.add_comment(uow, version_id=version_id, body=input.body)
        return AddCommentPayload(
            comment=Comment.from_row(row), model_version=ModelVersion.from_row(version)
        )
