"""Projects: the namespaces every model, dataset and experiment belongs to."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Self

import strawberry
from strawberry import relay

from mlcatalog.api.context import Info
from mlcatalog.api.pagination import Connection, children_connection
from mlcatalog.api.types.common import RowNode, node_of, required_node
from mlcatalog.api.types.webhooks import Webhook
from mlcatalog.catalog.projects import Settings
from mlcatalog.catalog.versions import Stage
from mlcatalog.store.paging import GATES_OF_PROJECT, WEBHOOKS_OF_PROJECT
from mlcatalog.store.rows import ProjectRow, ProjectSettingsRow

if TYPE_CHECKING:
    from mlcatalog.api.types.approvals import QualityGate

QualityGateRef = Annotated["QualityGate", strawberry.lazy("mlcatalog.api.types.approvals")]


@strawberry.type(description="How a project's versions move between stages.")
class ProjectSettings:
    require_approval: list[Stage] = strawberry.field(
        description="Stages entered only through an approved stage transition request."
    )
    four_eyes: bool = strawberry.field(description="The requester of a move cannot approve it.")

    @classmethod
    def of(cls, settings: Settings) -> Self:
        return cls(
            require_approval=[s for s in Stage if s in settings.require_approval],
            four_eyes=settings.four_eyes,
        )


@strawberry.type(description="A namespace that every model, dataset and experiment belongs to.")
class Project(RowNode):
    row_type = ProjectRow
    id: relay.NodeID[int]
    name: str
    description: str
    created_at: datetime
    created_by: str

    @strawberry.field(
        description="The project's webhooks (never their secrets); null with FORBIDDEN for"
        " those who do not manage them."
    )
    async def webhooks(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Webhook] | None:
        return await children_connection(
            info.context.loaders,
            WEBHOOKS_OF_PROJECT,
            self.id,
            Webhook.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )

    @classmethod
    def from_row(cls, row: ProjectRow) -> Self:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            created_at=row.created_at,
            created_by=row.created_by,
        )

    @strawberry.field(description="How versions move between stages: approvals, four eyes.")
    async def settings(self, info: Info) -> "ProjectSettings":
        row = await info.context.loaders.row(ProjectSettingsRow, self.id)
        return ProjectSettings.of(Settings() if row is None else Settings.of_row(row))

    @strawberry.field(description="The rules versions must pass to enter each stage.")
    async def quality_gates(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[QualityGateRef]:
        return await children_connection(
            info.context.loaders,
            GATES_OF_PROJECT,
            self.id,
            lambda row: node_of("QualityGate", row),
            first=first,
            after=after,
            last=last,
            before=before,
        )


async def project_of(info: Info, project_id: int) -> Project:
    project: Project = await required_node(info, "Project", project_id)
    return project


@strawberry.input
class CreateProjectInput:
    name: str
    description: str | None = None


@strawberry.type
class CreateProjectPayload:
    project: Project
