"""Projects: the namespaces every model, dataset and experiment belongs to."""

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay

from mlcatalog.api.context import Info
from mlcatalog.api.types.common import RowNode, required_node
from mlcatalog.store.rows import ProjectRow


@strawberry.type(description="A namespace that every model, dataset and experiment belongs to.")
class Project(RowNode):
    row_type = ProjectRow
    id: relay.NodeID[int]
    name: str
    description: str
    created_at: datetime
    created_by: str

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
