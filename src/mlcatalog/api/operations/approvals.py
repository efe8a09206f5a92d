"""Stage transition requests (request, approve, reject, cancel, the list), quality gates and
project settings."""

import strawberry

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode
from mlcatalog.api.pagination import Connection, listing_connection
from mlcatalog.api.types.approvals import (
    AddQualityGateInput,
    AddQualityGatePayload,
    ApproveStageTransitionInput,
    ApproveStageTransitionPayload,
    CancelStageTransitionInput,
    CancelStageTransitionPayload,
    QualityGate,
    RejectStageTransitionInput,
    RejectStageTransitionPayload,
    RemoveQualityGateInput,
    RemoveQualityGatePayload,
    RequestStageTransitionInput,
    RequestStageTransitionPayload,
    StageTransitionRequest,
    UpdateProjectSettingsInput,
    UpdateProjectSettingsPayload,
)
from mlcatalog.api.types.common import node_of
from mlcatalog.catalog import approvals, gates, projects
from mlcatalog.catalog.approvals import RequestStatus
from mlcatalog.store import queries

REQUEST = "StageTransitionRequest"


@strawberry.type
class ApprovalQueries:
    @strawberry.field(
        description="Stage transition requests in the projects you see, newest first: with"
        " status PENDING, what awaits a decision."
    )
    async def transition_requests(
        self,
        info: Info,
        status: RequestStatus | None = None,
        project: str | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[StageTransitionRequest]:
        return await listing_connection(
            info.context.loaders,
            queries.transition_requests_listing(
                status=status, project=project, visible=info.context.gate.visible
            ),
            StageTransitionRequest.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )


@strawberry.type
class ApprovalMutations:
    @strawberry.mutation(description="Ask for a version to be moved; someone else approves.")
    async def request_stage_transition(
        self, info: Info, input: RequestStageTransitionInput
    ) -> RequestStageTransitionPayload:
        async with info.context.unit_of_work() as uow:
            row = await approvals.request_transition(
                uow,
                version_id=decode(input.version, "ModelVersion"),
                stage=input.stage,
                comment=input.comment,
            )
        return RequestStageTransitionPayload(request=StageTransitionRequest.from_row(row))

    @strawberry.mutation(
        description="Approve a pending request: the version moves now, if it passes the gates."
    )
    async def approve_stage_transition(
        self, info: Info, input: ApproveStageTransitionInput
    ) -> ApproveStageTransitionPayload:
        async with info.context.unit_of_work() as uow:
            approval = await approvals.approve_transition(
                uow, request_id=decode(input.request, REQUEST), comment=input.comment
            )
        return ApproveStageTransitionPayload(
            request=StageTransitionRequest.from_row(approval.request),
            model_version=node_of("ModelVersion", approval.change.version),
        )

    @strawberry.mutation
    async def reject_stage_transition(
        self, info: Info, input: RejectStageTransitionInput
    ) -> RejectStageTransitionPayload:
        async with info.context.unit_of_work() as uow:
            row = await approvals.reject_transition(
                uow, request_id=decode(input.request, REQUEST), comment=input.comment
            )
        return RejectStageTransitionPayload(request=StageTransitionRequest.from_row(row))

    @strawberry.mutation(description="Withdraw your own pending request.")
    async def cancel_stage_transition(
        self, info: Info, input: CancelStageTransitionInput
    ) -> CancelStageTransitionPayload:
        async with info.context.unit_of_work() as uow:
            row = await approvals.cancel_transition(
                uow, request_id=decode(input.request, REQUEST), comment=input.comment
            )
        return CancelStageTransitionPayload(request=StageTransitionRequest.from_row(row))

    @strawberry.mutation
    async def update_project_settings(
        self, info: Info, input: UpdateProjectSettingsInput
    ) -> UpdateProjectSettingsPayload:
        async with info.context.unit_of_work() as uow:
            project = await projects.project_by_name(uow, input.project)
            await projects.update_project_settings(
                uow,
                project_id=project.id,
                require_approval=input.require_approval,
                four_eyes=input.four_eyes,
            )
        return UpdateProjectSettingsPayload(project=node_of("Project", project))

    @strawberry.mutation(description="A rule every move into the stage must pass.")
    async def add_quality_gate(
        self, info: Info, input: AddQualityGateInput
    ) -> AddQualityGatePayload:
        async with info.context.unit_of_work() as uow:
            project = await projects.project_by_name(uow, input.project)
            row = await gates.add_gate(uow, project_id=project.id, **input.to_catalog())
        return AddQualityGatePayload(quality_gate=QualityGate.from_row(row))

    @strawberry.mutation
    async def remove_quality_gate(
        self, info: Info, input: RemoveQualityGateInput
    ) -> RemoveQualityGatePayload:
        async with info.context.unit_of_work() as uow:
            await gates.remove_gate(uow, gate_id=decode(input.id, "QualityGate"))
        return RemoveQualityGatePayload(removed_id=input.id)
