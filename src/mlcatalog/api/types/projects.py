"""Projects: the namespaces every model, dataset and experiment belongs to."""

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay

from mlcatalog.api.context import Info
from mlcatalog.api.pagination import Connection, children_connection
from mlcatalog.api.types.common import RowNode, required_node
from mlcatalog.api.types.webhooks import Webhook
from mlcatalog.store.paging import WEBHOOKS_OF_PROJECT
from mlcatalog.store.rows import ProjectRow


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
