"""Experiments and runs: params, metrics with step history, compute, pipeline, inputs."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode, invalid
from mlcatalog.catalog.journal import record
from mlcatalog.catalog.lineage import EdgeKind, add_edge
from mlcatalog.catalog.steps import flush, get, stamp, touch
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.rows import ExperimentRow, ProjectRow, RunMetricRow, RunRow, utcnow


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


@dataclass(frozen=True)
class Pipeline:
    name: str
    run_id: str | None = None
    parameters: Any = field(default_factory=dict)  # checked to be a JSON object


@dataclass(frozen=True)
class RunMetric:
    name: str
    value: float
    step: int | None = None


async def create_experiment(
    uow: UnitOfWork,
    *,
    project_id: int,
    name: str,
    owner: str | None = None,
    description: str | None = None,
) -> ExperimentRow:
    await get(uow, ProjectRow, project_id, "project")
    validation.name(name, "experiment name")
    duplicate = f"experiment {name!r} already exists in this project"
    exists = select(ExperimentRow.id).where(
        ExperimentRow.project_id == project_id, ExperimentRow.name == name
    )
    if await uow.session.scalar(exists):
        raise CatalogError(ErrorCode.ALREADY_EXISTS, duplicate)
    experiment = ExperimentRow(
        project_id=project_id,
        name=name,
        owner=validation.line(owner, "owner", max_length=200) or uow.actor,
        description=validation.text(description, "description"),
        **stamp(uow),
    )
    uow.session.add(experiment)
    await flush(uow, duplicate=duplicate)
    record(
        uow,
        action="experiment.created",
        entity_type="Experiment",
        entity_id=experiment.id,
        project_id=project_id,
        after={"name": name, "owner": experiment.owner},
    )
    return experiment


def _params(params: Mapping[str, str]) -> dict[str, str]:
    if len(params) > 1000:
        raise invalid("at most 1000 params per run")
    return {
        validation.name(key, "param name"): validation.text(
            value, f"param {key!r}", max_length=6000
        )
        for key, value in params.items()
    }


async def create_run(
    uow: UnitOfWork,
    *,
    experiment_id: int,
    name: str,
    owner: str | None = None,
    description: str | None = None,
    params: Mapping[str, str] | None = None,
    started_at: datetime | None = None,
    hardware: str | None = None,
    accelerator: str | None = None,
    pipeline: Pipeline | None = None,
    code_version: str | None = None,
    input_dataset_version_ids: Sequence[int] = (),
) -> RunRow:
    experiment = await get(uow, ExperimentRow, experiment_id, "experiment")
    run = RunRow(
        experiment_id=experiment_id,
        name=validation.name(name, "run name"),
        owner=validation.line(owner, "owner", max_length=200) or uow.actor,
        description=validation.text(description, "description"),
        status=RunStatus.RUNNING,
        started_at=started_at or utcnow(),
        params=_params(params or {}),
        hardware=validation.line(hardware, "hardware", max_length=200),
        accelerator=validation.line(accelerator, "accelerator", max_length=200),
        pipeline_name=validation.line(pipeline.name, "pipeline name", max_length=200)
        if pipeline
        else None,
        pipeline_run_id=validation.line(pipeline.run_id, "pipeline run id", max_length=200)
        if pipeline
        else None,
        pipeline_parameters=validation.json_object(pipeline.parameters, "pipeline parameters")
        if pipeline
        else {},
        code_version=validation.line(code_version, "code version", max_length=200),
        **stamp(uow),
    )
    uow.session.add(run)
    await uow.session.flush()
    record(
        uow,
        action="run.created",
        entity_type="Run",
        entity_id=run.id,
        project_id=experiment.project_id,
        after={"experiment_id": experiment_id, "name": run.name, "params": run.params},
    )
    for dataset_version_id in dict.fromkeys(input_dataset_version_ids):
        await add_edge(
            uow,
            kind=EdgeKind.USED_BY,
            upstream=("DatasetVersion", dataset_version_id),
            downstream=("Run", run.id),
        )
    return run


async def log_run_metrics(uow: UnitOfWork, *, run_id: int, metrics: Sequence[RunMetric]) -> RunRow:
    run = await get(uow, RunRow, run_id, "run")
    if not metrics:
        raise invalid("give at least one metric")
    if len(metrics) > 1000:
        raise invalid("at most 1000 metrics per call")
    now = utcnow()
    rows = [
        RunMetricRow(
            run_id=run_id,
            name=validation.name(metric.name, "metric name"),
            value=validation.finite(metric.value, f"metric {metric.name!r}"),
            step=validation.non_negative(metric.step, "metric step"),
            at=now,
        )
        for metric in metrics
    ]
    uow.session.add_all(rows)
    touch(run, uow)
    experiment = await get(uow, ExperimentRow, run.experiment_id, "experiment")
    record(
        uow,
        action="run.metrics_logged",
        entity_type="Run",
        entity_id=run_id,
        project_id=experiment.project_id,
        after={"metrics": [{"name": r.name, "value": r.value, "step": r.step} for r in rows]},
    )
    return run


async def finish_run(
    uow: UnitOfWork, *, run_id: int, status: RunStatus, ended_at: datetime | None = None
) -> RunRow:
    run = await get(uow, RunRow, run_id, "run")
    if status == RunStatus.RUNNING:
        raise invalid("a run finishes as FINISHED, FAILED or KILLED")
    if run.status != RunStatus.RUNNING:
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION, f"run {run.name!r} already ended as {run.status}"
        )
    ended = ended_at or utcnow()
    if ended < run.started_at:
        raise invalid("a run cannot end before it started")
    run.status, run.ended_at = status, ended
    touch(run, uow)
    experiment = await get(uow, ExperimentRow, run.experiment_id, "experiment")
    record(
        uow,
        action="run.finished",
        entity_type="Run",
        entity_id=run_id,
        project_id=experiment.project_id,
        before={"status": RunStatus.RUNNING},
        after={"status": str(status), "ended_at": ended},
    )
    return run
