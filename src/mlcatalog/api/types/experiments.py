"""Experiments and their runs."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Self

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from mlcatalog.api.context import Info
from mlcatalog.api.limits import cap, capped
from mlcatalog.api.pagination import Connection, children_connection
from mlcatalog.api.types.common import RowNode, load_nodes, required_node
from mlcatalog.api.types.projects import Project, project_of
from mlcatalog.catalog.experiments import RunStatus
from mlcatalog.store.paging import METRICS_OF_RUN, RUNS_OF_EXPERIMENT
from mlcatalog.store.rows import (
    ExperimentRow,
    RunMetricRow,
    RunRow,
)

if TYPE_CHECKING:
    from mlcatalog.api.types.datasets import DatasetVersion
    from mlcatalog.api.types.versions import ModelVersion

DatasetVersionRef = Annotated["DatasetVersion", strawberry.lazy("mlcatalog.api.types.datasets")]
ModelVersionRef = Annotated["ModelVersion", strawberry.lazy("mlcatalog.api.types.versions")]

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
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection["Run"]:
        return await children_connection(
            info.context.loaders,
            RUNS_OF_EXPERIMENT,
            self.id,
            Run.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
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
    parameters: JSON | None  # null where the policy hides it


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
        experiment: Experiment = await required_node(info, "Experiment", self.row.experiment_id)
        return experiment

    @strawberry.field
    def params(self) -> list[Param] | None:
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
        last: int | None = None,
        before: str | None = None,
        name: str | None = None,
    ) -> Connection[RunMetric]:
        return await children_connection(
            info.context.loaders,
            METRICS_OF_RUN,
            self.id,
            RunMetric.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
            filters=(("name", name),),
        )

    @strawberry.field(description="Dataset versions the run read.")
    async def inputs(self, info: Info) -> list[DatasetVersionRef]:
        edges = await info.context.loaders.edges(
            "target", "Run", self.id, per_kind=cap("Run.inputs")
        )
        return await load_nodes(
            info, "DatasetVersion", capped("Run.inputs", [e.source_id for e in edges])
        )

    @strawberry.field(description="Model versions the run produced.")
    async def outputs(self, info: Info) -> list[ModelVersionRef]:
        edges = await info.context.loaders.edges(
            "source", "Run", self.id, per_kind=cap("Run.outputs")
        )
        return await load_nodes(
            info, "ModelVersion", capped("Run.outputs", [e.target_id for e in edges])
        )


@strawberry.input
class CreateExperimentInput:
    project: str
    name: str
    description: str | None = None
    owner: str | None = None


@strawberry.type
class CreateExperimentPayload:
    experiment: Experiment


@strawberry.input
class ParamInput:
    name: str
    value: str


@strawberry.input
class PipelineInput:
    name: str
    run_id: str | None = None
    parameters: JSON | None = None


@strawberry.input
class CreateRunInput:
    experiment: relay.GlobalID
    name: str
    description: str | None = None
    owner: str | None = None
    params: list[ParamInput] | None = None
    started_at: datetime | None = None
    hardware: str | None = None
    accelerator: str | None = None
    pipeline: PipelineInput | None = None
    code_version: str | None = None
    inputs: list[relay.GlobalID] | None = strawberry.field(
        default=None, description="Dataset versions the run reads."
    )


@strawberry.type
class CreateRunPayload:
    run: Run


@strawberry.input
class FinishRunInput:
    id: relay.GlobalID
    status: RunStatus = RunStatus.FINISHED
    ended_at: datetime | None = None


@strawberry.type
class FinishRunPayload:
    run: Run
