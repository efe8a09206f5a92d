"""Experiments and their runs."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from mlcatalog.api.context import Info
from mlcatalog.api.limits import capped
from mlcatalog.api.loaders import METRICS_OF_RUN, RUNS_OF_EXPERIMENT
from mlcatalog.api.pagination import Connection, children_connection
from mlcatalog.api.types.common import Project, RowNode, project_of
from mlcatalog.catalog.experiments import RunStatus
from mlcatalog.store.rows import (
    DatasetVersionRow,
    ExperimentRow,
    ModelVersionRow,
    RunMetricRow,
    RunRow,
)

if TYPE_CHECKING:
    from mlcatalog.api.types.datasets import DatasetVersion
    from mlcatalog.api.types.models import ModelVersion

DatasetVersionRef = Annotated["DatasetVersion", strawberry.lazy("mlcatalog.api.types.datasets")]
ModelVersionRef = Annotated["ModelVersion", strawberry.lazy("mlcatalog.api.types.models")]

strawberry.enum(RunStatus)


@strawberry.type(description="A named group of runs.")
class Experiment(RowNode):
    row_type = ExperimentRow
    id: relay.NodeID[int]
    name: str
    description: str
    owner: str
    created_at: datetime
    created_by: str
    project_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: ExperimentRow) -> Self:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            owner=row.owner,
            created_at=row.created_at,
            created_by=row.created_by,
            project_id=row.project_id,
        )

    @strawberry.field
    async def project(self, info: Info) -> Project:
        return await project_of(info, self.project_id)

    @strawberry.field(description="Runs, newest first.")
    async def runs(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection["Run"]:
        return await children_connection(
            info.context.loaders, RUNS_OF_EXPERIMENT, self.id, first, after, Run.from_row
        )


@strawberry.type
class Param:
    name: str
    value: str


@strawberry.type(description="What a run ran on.")
class Compute:
    hardware: str | None
    accelerator: str | None
    duration_seconds: float | None


@strawberry.type(description="The orchestration pipeline that launched a run.")
class Pipeline:
    name: str
    run_id: str | None
    parameters: JSON


@strawberry.type(description="One logged value of a run metric, at a step.")
class RunMetric:
    name: str
    value: float
    step: int | None
    at: datetime

    @classmethod
    def from_row(cls, row: RunMetricRow) -> Self:
        return cls(name=row.name, value=row.value, step=row.step, at=row.at)


@strawberry.type(description="One training or evaluation run.")
class Run(RowNode):
    row_type = RunRow
    id: relay.NodeID[int]
    name: str
    description: str
    owner: str
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None
    code_version: str | None
    created_by: str
    row: strawberry.Private[RunRow]

    @classmethod
    def from_row(cls, row: RunRow) -> Self:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            owner=row.owner,
            status=RunStatus(row.status),
            started_at=row.started_at,
            ended_at=row.ended_at,
            code_version=row.code_version,
            created_by=row.created_by,
            row=row,
        )

    @strawberry.field
    async def experiment(self, info: Info) -> Experiment:
        row = await info.context.loaders.row(ExperimentRow, self.row.experiment_id)
        assert row is not None
        return Experiment.from_row(row)

    @strawberry.field
    def params(self) -> list[Param]:
        params = capped("Run.params", sorted(self.row.params.items()))
        return [Param(name=k, value=v) for k, v in params]

    @strawberry.field
    def compute(self) -> Compute:
        r = self.row
        duration = (r.ended_at - r.started_at).total_seconds() if r.ended_at else None
        return Compute(hardware=r.hardware, accelerator=r.accelerator, duration_seconds=duration)

    @strawberry.field
    def pipeline(self) -> Pipeline | None:
        r = self.row
        if r.pipeline_name is None:
            return None
        return Pipeline(
            name=r.pipeline_name, run_id=r.pipeline_run_id, parameters=JSON(r.pipeline_parameters)
        )

    @strawberry.field(description="Logged values with their step history; `name` keeps one metric.")
    async def metrics(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        name: str | None = None,
    ) -> Connection[RunMetric]:
        return await children_connection(
            info.context.loaders,
            METRICS_OF_RUN,
            self.id,
            first,
            after,
            RunMetric.from_row,
            (("name", name),),
        )

    @strawberry.field(description="Dataset versions the run read.")
    async def inputs(self, info: Info) -> list[DatasetVersionRef]:
        from mlcatalog.api.types.datasets import DatasetVersion  # cyclic: datasets imports runs

        edges = await info.context.loaders.edges("target", "Run", self.id)
        ids = capped("Run.inputs", [e.source_id for e in edges])
        rows = await info.context.loaders.rows(DatasetVersionRow, ids)
        return [DatasetVersion.from_row(row) for row in rows if row is not None]

    @strawberry.field(description="Model versions the run produced.")
    async def outputs(self, info: Info) -> list[ModelVersionRef]:
        from mlcatalog.api.types.models import ModelVersion  # cyclic: models imports runs

        edges = await info.context.loaders.edges("source", "Run", self.id)
        ids = capped("Run.outputs", [e.target_id for e in edges])
        rows = await info.context.loaders.rows(ModelVersionRow, ids)
        return [ModelVersion.from_row(row) for row in rows if row is not None]
