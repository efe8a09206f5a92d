"""Model versions: create with gap-free numbers, edit, metrics, stages, aliases, comments."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode, invalid, not_found
from mlcatalog.catalog.journal import bounded, diff, record
from mlcatalog.catalog.lifecycle import Stage as Stage  # the stages are the lifecycle's
from mlcatalog.catalog.lifecycle import check_move, refuse_locked
from mlcatalog.catalog.lineage import NodeRef, add_edge, link_new_versions
from mlcatalog.catalog.lineage import project_of as node_project
from mlcatalog.catalog.removal import take_versions
from mlcatalog.catalog.steps import (
    flush,
    get,
    lock_model,
    lock_version,
    project_of,
    stamp,
    touch,
)
from mlcatalog.store import history
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import (
    Action,
    AliasPointer,
    CommentAdded,
    EdgeKind,
    EntityType,
    Metric,
    MetricsLogged,
    ModelVersionCreated,
    ModelVersionDeleted,
    StageEntered,
    StageFields,
)
from mlcatalog.store.rows import (
    AliasRow,
    CommentRow,
    DatasetRow,
    DatasetVersionRow,
    MetricRow,
    ModelRow,
    ModelVersionRow,
    ModelVersionTagRow,
    RunRow,
    utcnow,
)

ARTIFACT_FORMATS = (
    "onnx",
    "pickle",
    "safetensors",
    "torchscript",
    "joblib",
    "savedmodel",
    "gguf",
    "other",
)


@dataclass(frozen=True)
class Artifact:
    uri: str
    format: str | None = None
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class CodeReference:
    repository: str | None = None
    commit: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Environment:
    python_version: str | None = None
    packages: Mapping[str, str] = field(default_factory=dict)
    container_image: str | None = None


@dataclass(frozen=True)
class MetricValue:
    name: str
    value: float
    step: int | None = None
    dataset: str | None = None
    dataset_version_id: int | None = None


async def _next_number(uow: UnitOfWork, model_id: int) -> int:
    """Hand out the next version number under the model's row lock: no gaps, no duplicates."""
    number = await uow.session.scalar(
        update(ModelRow)
        .where(ModelRow.id == model_id)
        .values(version_count=ModelRow.version_count + 1)
        .returning(ModelRow.version_count)
        .execution_options(synchronize_session=False)
    )
    if number is None:
        raise not_found(f"model {model_id}")
    return number


def _artifact_columns(artifact: Artifact | None) -> dict[str, Any]:
    if artifact is None:
        return {}
    if artifact.format is not None and artifact.format not in ARTIFACT_FORMATS:
        raise invalid(
            f"artifact format {artifact.format[:50]!r} is not one of {', '.join(ARTIFACT_FORMATS)}"
        )
    return {
        "artifact_uri": validation.required_line(artifact.uri, "artifact uri"),
        "artifact_format": artifact.format,
        "artifact_size": validation.non_negative(artifact.size, "artifact size"),
        "artifact_sha256": validation.sha256(artifact.sha256),
    }


def _code_columns(code: CodeReference | None) -> dict[str, Any]:
    if code is None:
        return {}
    return {
        "code_repository": validation.line(code.repository, "code repository"),
        "code_commit": validation.commit(code.commit),
        "code_path": validation.line(code.path, "code path", max_length=1000),
    }


def _environment_columns(environment: Environment | None) -> dict[str, Any]:
    if environment is None:
        return {}
    packages = {
        validation.required_line(name, "package name", max_length=200): validation.required_line(
            version, f"version of package {name!r}", max_length=100
        )
        for name, version in environment.packages.items()
    }
    return {
        "python_version": validation.line(
            environment.python_version, "python version", max_length=50
        ),
        "packages": packages,
        "container_image": validation.line(
            environment.container_image, "container image", max_length=1000
        ),
    }


async def _semver_taken(uow: UnitOfWork, model_id: int, semver: str, version_id: int = 0) -> None:
    taken = await uow.session.scalar(
        select(ModelVersionRow.number).where(
            ModelVersionRow.model_id == model_id,
            ModelVersionRow.semver == semver,
            ModelVersionRow.id != version_id,
        )
    )
    if taken is not None:
        raise CatalogError(
            ErrorCode.ALREADY_EXISTS, f"version {semver} is already taken by version number {taken}"
        )


def _columns(
    *,
    semver: str | None,
    description: str | None,
    stage: Stage,
    artifact: Artifact | None,
    framework: str | None,
    framework_version: str | None,
    algorithm: str | None,
    hyperparameters: Any,
    code: CodeReference | None,
    environment: Environment | None,
) -> dict[str, Any]:
    """A new version's checked columns: what create_model_version and register_model_versions
    write the same way."""
    return {
        "semver": validation.semver(semver),
        "description": validation.text(description, "description"),
        "stage": stage,
        "framework": validation.line(framework, "framework", max_length=100),
        "framework_version": validation.line(
            framework_version, "framework version", max_length=100
        ),
        "algorithm": validation.line(algorithm, "algorithm", max_length=200),
        "hyperparameters": validation.json_object(hyperparameters, "hyperparameters"),
        **_artifact_columns(artifact),
        **_code_columns(code),
        **_environment_columns(environment),
    }


async def create_model_version(
    uow: UnitOfWork,
    *,
    model_id: int,
    semver: str | None = None,
    description: str | None = None,
    stage: Stage = Stage.NONE,
    artifact: Artifact | None = None,
    framework: str | None = None,
    framework_version: str | None = None,
    algorithm: str | None = None,
    hyperparameters: Any = None,
    tags: Mapping[str, str] | None = None,
    metrics: Sequence[MetricValue] = (),
    code: CodeReference | None = None,
    environment: Environment | None = None,
    source_run_id: int | None = None,
    training_dataset_version_ids: Sequence[int] = (),
    evaluation_dataset_version_ids: Sequence[int] = (),
) -> ModelVersionRow:
    # Check every argument before taking the model's row lock, so bad input holds no lock.
    columns = _columns(
        semver=semver,
        description=description,
        stage=stage,
        artifact=artifact,
        framework=framework,
        framework_version=framework_version,
        algorithm=algorithm,
        hyperparameters=hyperparameters,
        code=code,
        environment=environment,
    )
    checked_tags = validation.tags(tags or {})
    model = await get(uow, ModelRow, model_id, "model")
    if model.archived_at is not None:
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION, f"model {model.name!r} is archived: restore it first"
        )
    if semver is not None:
        await _semver_taken(uow, model_id, semver)
    if stage == Stage.PRODUCTION and not model.allows_several_in_production:
        await lock_model(uow, model_id)
        serving = await uow.session.scalar(
            select(ModelVersionRow.number).where(
                ModelVersionRow.model_id == model_id, ModelVersionRow.stage == Stage.PRODUCTION
            )
        )
        if serving is not None:
            # Creating is no move: it would archive nothing. Promote instead (set_stage).
            raise CatalogError(
                ErrorCode.FAILED_PRECONDITION,
                f"version {serving} is in PRODUCTION and model {model.name!r} allows one"
                " there: create the version in STAGING and promote it",
            )
    if source_run_id is not None:
        await get(uow, RunRow, source_run_id, "run")
    number = await _next_number(uow, model_id)
    version = ModelVersionRow(
        model_id=model_id, number=number, source_run_id=source_run_id, **columns, **stamp(uow)
    )
    uow.session.add(version)
    await flush(uow, duplicate=f"version {semver} already exists for this model")
    uow.session.add_all(
        ModelVersionTagRow(version_id=version.id, key=k, value=v) for k, v in checked_tags.items()
    )
    record(
        uow,
        Action.MODEL_VERSION_CREATED,
        version.id,
        project_id=model.project_id,
        after=ModelVersionCreated(model_id=model_id, number=number, version=semver, stage=stage),
        model_id=model_id,
    )
    if source_run_id is not None:
        await add_edge(
            uow,
            kind=EdgeKind.PRODUCED,
            upstream=(EntityType.RUN, source_run_id),
            downstream=(EntityType.MODEL_VERSION, version.id),
        )
    for kind, dataset_version_ids in (
        (EdgeKind.TRAINED_ON, training_dataset_version_ids),
        (EdgeKind.EVALUATED_ON, evaluation_dataset_version_ids),
    ):
        for dataset_version_id in dict.fromkeys(dataset_version_ids):
            await add_edge(
                uow,
                kind=kind,
                upstream=(EntityType.DATASET_VERSION, dataset_version_id),
                downstream=(EntityType.MODEL_VERSION, version.id),
            )
    if metrics:
        await _add_metrics(uow, version, model.project_id, metrics)
    return version


MAX_BULK_VERSIONS = 1000
MAX_BULK_METRICS = 10_000
# Creating into a stage runs its approval rule and quality gates one version at a time
# (approvals.create_version); a batch creates in NONE and the versions move afterwards.
BULK_STAGES = frozenset({Stage.NONE})
LINEAGE_ARGUMENTS = (
    "source_run_id",
    "training_dataset_version_ids",
    "evaluation_dataset_version_ids",
)


def _edges(item: Mapping[str, Any]) -> list[tuple[EdgeKind, NodeRef]]:
    """The lineage edges into a new version, as create_model_version links them."""
    edges: list[tuple[EdgeKind, NodeRef]] = []
    if item.get("source_run_id") is not None:
        edges.append((EdgeKind.PRODUCED, (EntityType.RUN, item["source_run_id"])))
    for kind, key in (
        (EdgeKind.TRAINED_ON, "training_dataset_version_ids"),
        (EdgeKind.EVALUATED_ON, "evaluation_dataset_version_ids"),
    ):
        for dataset_version_id in dict.fromkeys(item.get(key) or ()):
            edges.append((kind, (EntityType.DATASET_VERSION, dataset_version_id)))
    return edges


# The columns an item may leave out: one multi-row INSERT needs the same columns in every row.
UNSET_COLUMNS: dict[str, Any] = {
    **dict.fromkeys(
        (
            "artifact_uri",
            "artifact_format",
            "artifact_size",
            "artifact_sha256",
            "code_repository",
            "code_commit",
            "code_path",
            "python_version",
            "container_image",
            "source_run_id",
        )
    ),
    "packages": {},
}


async def register_model_versions(
    uow: UnitOfWork, *, versions: Sequence[Mapping[str, Any]]
) -> list[ModelVersionRow]:
    """Create many versions at once, all or none: each item holds create_model_version's
    keyword arguments. One INSERT per table for the whole batch; numbers are handed out per
    model under its lock; every version journaled as create_model_version journals it. A bad
    item refuses the request, naming the item's index."""
    if not versions:
        raise invalid("give at least one version")
    if len(versions) > MAX_BULK_VERSIONS:
        raise invalid(f"at most {MAX_BULK_VERSIONS} versions per request")
    if sum(len(item.get("metrics") or ()) for item in versions) > MAX_BULK_METRICS:
        raise invalid(f"at most {MAX_BULK_METRICS} metrics per request")
    checked: list[tuple[dict[str, Any], dict[str, str], list[dict[str, Any]]]] = []
    semvers: dict[tuple[int, str], int] = {}
    edges: list[list[tuple[EdgeKind, NodeRef]]] = []
    for index, item in enumerate(versions):
        try:
            stage = item.get("stage", Stage.NONE)
            if stage not in BULK_STAGES:
                raise invalid(f"a batch creates versions in NONE, not {stage}: move them after")
            skipped = ("model_id", "tags", "metrics", *LINEAGE_ARGUMENTS)
            columns = _columns(**{k: v for k, v in item.items() if k not in skipped})
            columns["model_id"] = item["model_id"]
            columns["source_run_id"] = item.get("source_run_id")
            tags = validation.tags(item.get("tags") or {})
            metrics = await _metric_columns(uow, item.get("metrics") or ())
            if columns["semver"] is not None:
                key = (item["model_id"], columns["semver"])
                if key in semvers:
                    raise CatalogError(
                        ErrorCode.ALREADY_EXISTS,
                        f"version {key[1]} is also given by item {semvers[key]}",
                    )
                semvers[key] = index
        except CatalogError as error:
            raise CatalogError(error.code, f"versions[{index}]: {error.message}") from None
        checked.append((columns, tags, metrics))
        edges.append(_edges(item))
    models: dict[int, ModelRow] = {}
    for model_id in sorted({columns["model_id"] for columns, _, _ in checked}):
        try:
            model = await get(uow, ModelRow, model_id, "model")
        except CatalogError as error:
            index = next(i for i, (c, _, _) in enumerate(checked) if c["model_id"] == model_id)
            raise CatalogError(error.code, f"versions[{index}]: {error.message}") from None
        # Sorted, so two batches over the same models take their locks in the same order.
        models[model_id] = await lock_model(uow, model_id)
    if semvers:
        taken = await uow.session.execute(
            select(ModelVersionRow.model_id, ModelVersionRow.semver).where(
                ModelVersionRow.model_id.in_({m for m, _ in semvers}),
                ModelVersionRow.semver.in_({v for _, v in semvers}),
            )
        )
        for model_id, semver in taken:
            if semver is not None and (model_id, semver) in semvers:
                raise CatalogError(
                    ErrorCode.ALREADY_EXISTS,
                    f"versions[{semvers[model_id, semver]}]: version {semver} is already taken",
                )
    for columns, _, _ in checked:
        model = models[columns["model_id"]]
        if model.archived_at is not None:
            index = next(i for i, (c, _, _) in enumerate(checked) if c["model_id"] == model.id)
            raise CatalogError(
                ErrorCode.FAILED_PRECONDITION,
                f"versions[{index}]: model {model.name!r} is archived: restore it first",
            )
    # What the edges come from must exist and be visible (read once each); being new, the
    # versions they go to can close no cycle and hold no edge yet.
    upstreams = {
        up: i for i, item_edges in reversed(list(enumerate(edges))) for _, up in item_edges
    }
    for upstream, index in upstreams.items():
        try:
            await node_project(uow, upstream)
        except CatalogError as error:
            raise CatalogError(error.code, f"versions[{index}]: {error.message}") from None
    # Numbers: each model's count moves by its share of the batch, under the lock taken above.
    counts: dict[int, int] = {}
    for columns, _, _ in checked:
        counts[columns["model_id"]] = counts.get(columns["model_id"], 0) + 1
    next_number = {}
    for model_id, count in counts.items():
        last = await uow.session.scalar(
            update(ModelRow)
            .where(ModelRow.id == model_id)
            .values(version_count=ModelRow.version_count + count)
            .returning(ModelRow.version_count)
            .execution_options(synchronize_session=False)
        )
        assert last is not None  # locked above
        next_number[model_id] = last - count + 1
    stamps = stamp(uow)
    version_values = []
    for columns, _, _ in checked:
        number = next_number[columns["model_id"]]
        next_number[columns["model_id"]] = number + 1
        version_values.append({**UNSET_COLUMNS, **columns, "number": number, **stamps})
    # Core, not the ORM's bulk insert: that one sends a row per statement to learn the ids in
    # order; (model, number) says which row each returned id is.
    connection = await uow.session.connection()
    inserted = await connection.execute(
        insert(ModelVersionRow.__table__).returning(  # type: ignore[arg-type]
            ModelVersionRow.id, ModelVersionRow.model_id, ModelVersionRow.number
        ),
        version_values,
    )
    id_of = {(model_id, number): version_id for version_id, model_id, number in inserted}
    ids = [id_of[values["model_id"], values["number"]] for values in version_values]
    tag_values = [
        {"version_id": version_id, "key": key, "value": value}
        for version_id, (_, tags, _) in zip(ids, checked, strict=True)
        for key, value in tags.items()
    ]
    if tag_values:
        await connection.execute(insert(ModelVersionTagRow.__table__), tag_values)  # type: ignore[arg-type]
    metric_values = [
        {**metric, "version_id": version_id}
        for version_id, (_, _, metrics) in zip(ids, checked, strict=True)
        for metric in metrics
    ]
    if metric_values:
        await connection.execute(insert(MetricRow.__table__), metric_values)  # type: ignore[arg-type]
    new_edges: list[tuple[EdgeKind, NodeRef, int, int]] = []
    for version_id, values, (_, _, metrics), item_edges in zip(
        ids, version_values, checked, edges, strict=True
    ):
        project_id = models[values["model_id"]].project_id
        record(
            uow,
            Action.MODEL_VERSION_CREATED,
            version_id,
            project_id=project_id,
            after=ModelVersionCreated(
                model_id=values["model_id"],
                number=values["number"],
                version=values["semver"],
                stage=values["stage"],
            ),
            model_id=values["model_id"],
        )
        new_edges.extend((kind, up, version_id, project_id) for kind, up in item_edges)
        if metrics:
            _record_metrics(uow, version_id, project_id, metrics)
    await link_new_versions(uow, new_edges)
    return await load_versions(uow, ids)


async def load_versions(uow: UnitOfWork, ids: Sequence[int]) -> list[ModelVersionRow]:
    """The versions, in the order of ``ids``: one SELECT."""
    rows = {
        row.id: row
        for row in await uow.session.scalars(
            select(ModelVersionRow).where(ModelVersionRow.id.in_(ids))
        )
    }
    return [rows[version_id] for version_id in ids]


# What a version is (with its artifact, which no mutation changes): locked in PRODUCTION. Its
# description and semantic version stay editable.
LOCKED_FIELDS = frozenset({"framework", "framework_version", "algorithm", "hyperparameters"})


async def update_model_version(
    uow: UnitOfWork, *, version_id: int, changes: dict[str, Any]
) -> ModelVersionRow:
    """Change description, semantic version, framework, algorithm or hyperparameters."""
    version = await lock_version(uow, version_id)
    checked: dict[str, Any] = {}
    if "description" in changes:
        checked["description"] = validation.text(changes["description"], "description")
    if "semver" in changes:
        checked["semver"] = validation.semver(changes["semver"])
        if checked["semver"] is not None:
            await _semver_taken(uow, version.model_id, checked["semver"], version.id)
    for key, limit in (("framework", 100), ("framework_version", 100), ("algorithm", 200)):
        if key in changes:
            checked[key] = validation.line(changes[key], key.replace("_", " "), max_length=limit)
    if "hyperparameters" in changes:
        checked["hyperparameters"] = validation.json_object(
            changes["hyperparameters"], "hyperparameters"
        )
    if locked := sorted(checked.keys() & LOCKED_FIELDS):
        refuse_locked(version, ", ".join(locked).replace("_", " "))
    before, after = diff(version, checked)
    if after:
        touch(version, uow)
        await flush(uow, duplicate="that semantic version is already taken")
        record(
            uow,
            Action.MODEL_VERSION_UPDATED,
            version.id,
            project_id=await project_of(uow, EntityType.MODEL, version.model_id),
            before=before,
            after=after,
        )
    return version


async def _metric_dataset(uow: UnitOfWork, metric: MetricValue) -> str | None:
    if metric.dataset is not None:
        return validation.required_line(metric.dataset, "metric dataset", max_length=300)
    if metric.dataset_version_id is None:
        return None
    dataset_version = await get(
        uow, DatasetVersionRow, metric.dataset_version_id, "dataset version"
    )
    dataset = await get(uow, DatasetRow, dataset_version.dataset_id, "dataset")
    return f"{dataset.name}@{dataset_version.label}"


async def _add_metrics(
    uow: UnitOfWork, version: ModelVersionRow, project_id: int, metrics: Sequence[MetricValue]
) -> list[MetricRow]:
    if len(metrics) > 1000:
        raise invalid("at most 1000 metrics per call")
    columns = await _metric_columns(uow, metrics)
    rows = [MetricRow(version_id=version.id, **c) for c in columns]
    uow.session.add_all(rows)
    _record_metrics(uow, version.id, project_id, columns)
    return rows


async def _metric_columns(uow: UnitOfWork, metrics: Sequence[MetricValue]) -> list[dict[str, Any]]:
    return [
        {
            "name": validation.name(metric.name, "metric name"),
            "value": validation.finite(metric.value, f"metric {metric.name!r}"),
            "step": validation.non_negative(metric.step, "metric step"),
            "dataset": await _metric_dataset(uow, metric),
            "dataset_version_id": metric.dataset_version_id,
            "created_at": utcnow(),
            "created_by": uow.actor,
        }
        for metric in metrics
    ]


def _record_metrics(
    uow: UnitOfWork, version_id: int, project_id: int, rows: Sequence[Mapping[str, Any]]
) -> None:
    record(
        uow,
        Action.MODEL_VERSION_METRICS_LOGGED,
        version_id,
        project_id=project_id,
        after=MetricsLogged(
            metrics=[
                Metric(name=r["name"], value=r["value"], step=r["step"], dataset=r["dataset"])
                for r in rows
            ]
        ),
    )


async def log_metrics(
    uow: UnitOfWork, *, version_id: int, metrics: Sequence[MetricValue]
) -> ModelVersionRow:
    if not metrics:
        raise invalid("give at least one metric")
    version = await lock_version(uow, version_id)
    # Any metric, not only those on its evaluation datasets: a value logged later would change
    # the leaderboards and gates it was promoted under. Live metrics belong to runs.
    refuse_locked(version, "metrics")
    project_id = await project_of(uow, EntityType.MODEL, version.model_id)
    await _add_metrics(uow, version, project_id, metrics)
    touch(version, uow)
    return version


@dataclass(frozen=True)
class StageChange:
    """A version moved to a stage, and the versions archived to make room for it."""

    version: ModelVersionRow
    archived: list[ModelVersionRow]


async def set_stage(
    uow: UnitOfWork,
    *,
    version_id: int,
    stage: Stage,
    archive_others: bool = False,
    approval_id: int | None = None,
    rollback_of: int | None = None,
) -> StageChange:
    """Move a version to ``stage``: the one function that applies a stage move.

    The move must be one lifecycle.MOVES allows. Promoting to PRODUCTION archives the model's
    other production versions unless the model allows several; ``archive_others`` archives the
    others in STAGING or PRODUCTION in any case. ``approval_id`` names the approved request that
    carries the move (journaled). ``rollback_of`` (rollback_production) puts an ARCHIVED version
    back into PRODUCTION and archives that production version.
    """
    version = await get(uow, ModelVersionRow, version_id, "model version")
    model = await lock_model(uow, version.model_id)
    await uow.session.refresh(version)  # as the move before ours (which held the lock) left it
    if version.stage == stage:
        return StageChange(version=version, archived=[])
    if rollback_of is None:
        check_move(version, stage)
    elif not (version.stage == Stage.ARCHIVED and stage == Stage.PRODUCTION):
        raise invalid("a rollback puts an ARCHIVED version back into PRODUCTION")
    archived: list[ModelVersionRow] = []
    if stage == Stage.PRODUCTION or (archive_others and stage == Stage.STAGING):
        others = await uow.session.scalars(
            select(ModelVersionRow)
            .where(
                ModelVersionRow.model_id == version.model_id,
                ModelVersionRow.stage == stage,
                ModelVersionRow.id != version.id,
            )
            .order_by(ModelVersionRow.number)
        )
        several = model.allows_several_in_production and not archive_others
        archived = [row for row in others if not several or row.id == rollback_of]
    after = StageEntered(stage=stage, model_id=model.id)
    if archived:
        after["archived"] = [row.id for row in archived]
    if approval_id is not None:
        after["approval_id"] = approval_id
    if rollback_of is not None:
        after["rollback"] = True
    archiving = StageEntered(stage=Stage.ARCHIVED, model_id=model.id)
    for row, entered in [(version, after), *((other, archiving) for other in archived)]:
        record(
            uow,
            Action.MODEL_VERSION_STAGE_CHANGED,
            row.id,
            project_id=model.project_id,
            before=StageFields(stage=row.stage),
            after=entered,
            model_id=model.id,
        )
        row.stage = entered["stage"]
        touch(row, uow)
    return StageChange(version=version, archived=archived)


async def rollback_production(uow: UnitOfWork, *, model_id: int) -> StageChange:
    """Put back the version that the current production version replaced (the journal's record of
    its promotion names it), archiving the current one. FAILED_PRECONDITION when the model has no
    production version, when its promotion replaced none, or when that version has since moved
    on from ARCHIVED (or was deleted), or changed since."""
    await get(uow, ModelRow, model_id, "model")
    model = await lock_model(uow, model_id)
    in_production = {
        row.id: row
        for row in await uow.session.scalars(
            select(ModelVersionRow).where(
                ModelVersionRow.model_id == model_id, ModelVersionRow.stage == Stage.PRODUCTION
            )
        )
    }
    if not in_production:
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION, f"model {model.name!r} has no version in PRODUCTION"
        )
    # The current one: of the versions in production, the one promoted last.
    promotion = await history.latest_promotion(uow.session, in_production, uow.journal)
    current = (
        in_production[promotion.version_id]
        if promotion
        else max(in_production.values(), key=lambda row: row.number)
    )
    if promotion is None or not promotion.archived:
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION,
            f"version {current.number} replaced no production version: there is none to roll"
            " back to",
        )
    previous = await uow.session.get(ModelVersionRow, promotion.archived[-1])
    if previous is None or previous.stage != Stage.ARCHIVED:
        where = "was deleted" if previous is None else f"is in {previous.stage} now"
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION,
            f"the version that version {current.number} replaced {where}: roll back by hand",
        )
    # A rollback passes no gate and needs no approval: it may only put back what was replaced,
    # as it was then, not a version moved, changed or linked since (then archived again).
    if not await history.unchanged_since_replaced(uow.session, promotion, previous.id, uow.journal):
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION,
            f"version {previous.number} changed after version {current.number} replaced it:"
            " promote it through the gates instead",
        )
    return await set_stage(
        uow, version_id=previous.id, stage=Stage.PRODUCTION, rollback_of=current.id
    )


def _alias_name(alias: str) -> str:
    validation.name(alias, "alias", max_length=100)
    if alias.isdigit() or alias.lower() == "latest":
        raise invalid(f"alias {alias!r} is reserved: it would shadow a version number")
    return alias


async def set_alias(uow: UnitOfWork, *, version_id: int, alias: str) -> ModelVersionRow:
    """Point ``alias`` at a version; an alias is unique within its model, so it moves."""
    _alias_name(alias)
    version = await get(uow, ModelVersionRow, version_id, "model version")
    # The alias's row locked (PostgreSQL): two concurrent moves journal one after the other,
    # each with the version it really moved the alias from.
    current = await uow.session.scalar(
        select(AliasRow)
        .where(AliasRow.model_id == version.model_id, AliasRow.name == alias)
        .with_for_update()
    )
    if current is not None and current.version_id == version_id:
        return version
    before = None
    if current is None:
        uow.session.add(AliasRow(model_id=version.model_id, name=alias, version_id=version_id))
    else:
        before = AliasPointer(alias=alias, version_id=current.version_id)
        current.version_id = version_id
    record(
        uow,
        Action.ALIAS_MOVED if current else Action.ALIAS_SET,
        version_id,
        project_id=await project_of(uow, EntityType.MODEL, version.model_id),
        before=before,
        after=AliasPointer(alias=alias, version_id=version_id),
        model_id=version.model_id,
    )
    return version


async def remove_alias(uow: UnitOfWork, *, model_id: int, alias: str) -> ModelRow:
    model = await get(uow, ModelRow, model_id, "model")
    current = await uow.session.get(AliasRow, (model_id, alias))
    if current is None:
        raise not_found(f"alias {alias[:100]!r} on model {model.name!r}")
    await uow.session.delete(current)
    record(
        uow,
        Action.ALIAS_REMOVED,
        current.version_id,
        project_id=model.project_id,
        before=AliasPointer(alias=alias, version_id=current.version_id),
        model_id=model_id,
    )
    return model


async def add_comment(
    uow: UnitOfWork, *, version_id: int, body: str
) -> tuple[CommentRow, ModelVersionRow]:
    version = await get(uow, ModelVersionRow, version_id, "model version")
    if not body.strip():
        raise invalid("a comment must not be empty")
    comment = CommentRow(
        version_id=version_id,
        body=validation.text(body, "comment", max_length=20_000),
        created_at=utcnow(),
        created_by=uow.actor,
    )
    uow.session.add(comment)
    await uow.session.flush()
    record(
        uow,
        Action.COMMENT_ADDED,
        version_id,
        project_id=await project_of(uow, EntityType.MODEL, version.model_id),
        after=CommentAdded(comment_id=comment.id, body=bounded(comment.body)),
    )
    return comment, version


async def delete_model_version(uow: UnitOfWork, *, version_id: int) -> ModelVersionRow:
    """Hard-delete one version with its metrics, tags, aliases, comments, documents and
    lineage; the journal says what went."""
    version = await get(uow, ModelVersionRow, version_id, "model version")
    project_id = await project_of(uow, EntityType.MODEL, version.model_id)
    tags = (
        await uow.session.execute(
            select(ModelVersionTagRow.key, ModelVersionTagRow.value).where(
                ModelVersionTagRow.version_id == version_id
            )
        )
    ).all()
    taken = await take_versions(
        uow, select(ModelVersionRow.id).where(ModelVersionRow.id == version_id)
    )
    await uow.session.delete(version)
    await uow.session.flush()
    record(
        uow,
        Action.MODEL_VERSION_DELETED,
        version_id,
        project_id=project_id,
        before=ModelVersionDeleted(
            model_id=version.model_id,
            number=version.number,
            version=version.semver,
            stage=version.stage,
            tags=dict(sorted(tags)),
            aliases=list(taken.aliases),
            metrics=taken.metrics,
            comments=taken.comments,
            documents=taken.documents,
            lineage=taken.lineage,
        ),
        model_id=version.model_id,
    )
    return version
