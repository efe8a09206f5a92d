"""Experiments and runs: params, metrics with step history, compute, pipeline, inputs."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode, invalid
from mlcatalog.catalog.journal import digest, record
from mlcatalog.catalog.lineage import add_edge
from mlcatalog.catalog.steps import create_named, get, project_of, stamp, touch
from mlcatalog.store import journal
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import Action, EdgeKind, EntityType
from mlcatalog.store.rows import ExperimentRow, RunMetricRow, RunRow, utcnow


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
    experiment = await create_named(
        uow,
        ExperimentRow,
        project_id=project_id,
        name=name,
        what="experiment",
        owner=validation.line(owner, "owner", max_length=200) or uow.actor,
        description=validation.text(description, "description"),
    )
    record(
        uow,
        Action.EXPERIMENT_CREATED,
        experiment.id,
        project_id=project_id,
        after=journal.ExperimentCreated(name=name, owner=experiment.owner),
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
    # Parameters can run to megabytes: the journal keeps their names and digest.
    record(
        uow,
        Action.RUN_CREATED,
        run.id,
        project_id=experiment.project_id,
        after=journal.RunCreated(
            experiment_id=experiment_id,
            name=run.name,
            param_names=sorted(run.params),
            params=digest(run.params),
        ),
    )
    for dataset_version_id in dict.fromkeys(input_dataset_version_ids):
        await add_edge(
            uow,
            kind=EdgeKind.USED_BY,
            upstream=(EntityType.DATASET_VERSION, dataset_version_id),
            downstream=(EntityType.RUN, run.id),
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
    record(
        uow,
        Action.RUN_METRICS_LOGGED,
        run_id,
        project_id=await project_of(uow, EntityType.EXPERIMENT, run.experiment_id),
        after=journal.RunMetricsLogged(
            metrics=[journal.RunMetric(name=r.name, value=r.value, step=r.step) for r in rows]
        ),
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
    record(
        uow,
        Action.RUN_FINISHED,
        run_id,
        project_id=await project_of(uow, EntityType.EXPERIMENT, run.experiment_id),
        before=journal.StatusFields(status=RunStatus.RUNNING),
        after=journal.RunFinished(status=status, ended_at=ended.isoformat()),
    )
    return run
