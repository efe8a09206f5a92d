"""Mutations of the lifecycle: rollbackProduction and the deployments."""

import strawberry

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode
from mlcatalog.api.limits import capped
from mlcatalog.api.types.common import load_node
from mlcatalog.api.types.lifecycle import (
    Deployment,
    RecordDeploymentInput,
    RecordDeploymentPayload,
    RemoveDeploymentInput,
    RemoveDeploymentPayload,
    RollbackProductionInput,
    RollbackProductionPayload,
    UpdateDeploymentInput,
    UpdateDeploymentPayload,
)
from mlcatalog.api.types.versions import ModelVersion
from mlcatalog.catalog import deployments, versions


@strawberry.type
class LifecycleMutations:
    @strawberry.mutation(
        description="Put back the version the current production version replaced (named by"
        " the journal's record of its promotion), archiving the current one."
    )
    async def rollback_production(
        self, info: Info, input: RollbackProductionInput
    ) -> RollbackProductionPayload:
        async with info.context.unit_of_work() as uow:
            changed = await versions.rollback_production(uow, model_id=decode(input.model, "Model"))
        return RollbackProductionPayload(
            model_version=ModelVersion.from_row(changed.version),
            archived=[
                ModelVersion.from_row(row)
                for row in capped("RollbackProductionPayload.archived", changed.archived)
            ],
        )

    @strawberry.mutation(description="Record where a version runs.")
    async def record_deployment(
        self, info: Info, input: RecordDeploymentInput
    ) -> RecordDeploymentPayload:
        arguments = input.to_catalog()
        async with info.context.unit_of_work() as uow:
            row = await deployments.record_deployment(uow, **arguments)
        return RecordDeploymentPayload(deployment=Deployment.from_row(row))

    @strawberry.mutation(description="Change a deployment's status or traffic share.")
    async def update_deployment(
        self, info: Info, input: UpdateDeploymentInput
    ) -> UpdateDeploymentPayload:
        async with info.context.unit_of_work() as uow:
            row = await deployments.update_deployment(
                uow, deployment_id=decode(input.id, "Deployment"), changes=input.changes()
            )
        return UpdateDeploymentPayload(deployment=Deployment.from_row(row))

    @strawberry.mutation(description="Remove a deployment; the journal keeps the record.")
    async def remove_deployment(
        self, info: Info, input: RemoveDeploymentInput
    ) -> RemoveDeploymentPayload:
        async with info.context.unit_of_work() as uow:
            row = await deployments.remove_deployment(
                uow, deployment_id=decode(input.id, "Deployment")
            )
        version = await load_node(info, "ModelVersion", row.version_id)
        return RemoveDeploymentPayload(deleted_id=input.id, model_version=version)
