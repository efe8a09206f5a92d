"""Root queries and mutations for experiments and runs."""

import strawberry
from strawberry import relay

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode
from mlcatalog.api.pagination import Connection, listing_connection
from mlcatalog.api.types.experiments import (
    CreateExperimentInput,
    CreateExperimentPayload,
    CreateRunInput,
    CreateRunPayload,
    Experiment,
    FinishRunInput,
    FinishRunPayload,
    Run,
)
from mlcatalog.catalog import experiments, projects
from mlcatalog.store import queries
from mlcatalog.store.rows import ExperimentRow, RunRow


@strawberry.type
class ExperimentQueries:
    @strawberry.field
    async def experiment(self, info: Info, project: str, name: str) -> Experiment | None:
        async with info.context.loaders.read() as session:
            row = await queries.by_name(session, ExperimentRow, project, name)
        return Experiment.from_row(row) if row else None

    @strawberry.field(description="Experiments by name.")
    async def experiments(
        self,
        info: Info,
        project: str | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Experiment]:
        listing = queries.experiments_listing(project=project, visible=info.context.gate.visible)
        return await listing_connection(
            info.context.loaders,
            listing,
            Experiment.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )

    @strawberry.field
    async def run(self, info: Info, id: relay.GlobalID) -> Run | None:
        row = await info.context.loaders.row(RunRow, decode(id, "Run"))
        return Run.from_row(row) if row else None


@strawberry.type
class ExperimentMutations:
    @strawberry.mutation
    async def create_experiment(
        self, info: Info, input: CreateExperimentInput
    ) -> CreateExperimentPayload:
        async with info.context.unit_of_work() as uow:
            project = await projects.project_by_name(uow, input.project)
            row = await experiments.create_experiment(
                uow,
                project_id=project.id,
                name=input.name,
                owner=input.owner,
                description=input.description,
            )
        return CreateExperimentPayload(experiment=Experiment.from_row(row))

    @strawberry.mutation
    async def create_run(self, info: Info, input: CreateRunInput) -> CreateRunPayload:
        pipeline = input.pipeline
        async with info.context.unit_of_work() as uow:
            row = await experiments.create_run(
                uow,
                experiment_id=decode(input.experiment, "Experiment"),
                name=input.name,
                owner=input.owner,
                description=input.description,
                params={p.name: p.value for p in input.params or ()},
                started_at=input.started_at,
                hardware=input.hardware,
                accelerator=input.accelerator,
                pipeline=experiments.Pipeline(
                    name=pipeline.name, run_id=pipeline.run_id, parameters=pipeline.parameters or {}
                )
                if pipeline
                else None,
                code_version=input.code_version,
                input_dataset_version_ids=[decode(i, "DatasetVersion") for i in input.inputs or ()],
            )
        return CreateRunPayload(run=Run.from_row(row))

    @strawberry.mutation
    async def finish_run(self, info: Info, input: FinishRunInput) -> FinishRunPayload:
        async with info.context.unit_of_work() as uow:
            row = await experiments.finish_run(
                uow, run_id=decode(input.id, "Run"), status=input.status, ended_at=input.ended_at
            )
        return FinishRunPayload(run=Run.from_row(row))
