"""The projects list and createProject."""

import strawberry

from mlcatalog.api.context import Info
from mlcatalog.api.pagination import Connection, listing_connection
from mlcatalog.api.types.projects import CreateProjectInput, CreateProjectPayload, Project
from mlcatalog.catalog import projects
from mlcatalog.store import queries


@strawberry.type
class ProjectQueries:
    @strawberry.field(description="Projects by name.")
    async def projects(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Project]:
        return await listing_connection(
            info.context.loaders,
            queries.projects_listing(visible=info.context.gate.visible),
            Project.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )


@strawberry.type
class ProjectMutations:
    @strawberry.mutation
    async def create_project(self, info: Info, input: CreateProjectInput) -> CreateProjectPayload:
        async with info.context.unit_of_work() as uow:
            row = await projects.create_project(uow, name=input.name, description=input.description)
        return CreateProjectPayload(project=Project.from_row(row))
