"""Entity rows → search documents, in one place, loaded in batches."""

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy import String, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from mlcatalog.search.request import EntityType
from mlcatalog.store.journal import EdgeKind
from mlcatalog.store.journal import EntityType as Kind  # the store's names for entity types
from mlcatalog.store.rows import (
    DatasetRow,
    DatasetTagRow,
    DatasetVersionRow,
    DocumentRow,
    ExperimentRow,
    LineageEdgeRow,
    MetricRow,
    ModelRow,
    ModelTagRow,
    ModelVersionRow,
    ModelVersionTagRow,
    ProjectRow,
    RunMetricRow,
    RunRow,
)

Document = dict[str, Any]
Key = tuple[EntityType, int]  # one document per entity: its type and id
ROWS: dict[EntityType, Any] = {
    EntityType.MODEL: ModelRow,
    EntityType.MODEL_VERSION: ModelVersionRow,
    EntityType.DATASET: DatasetRow,
    EntityType.EXPERIMENT: ExperimentRow,
    EntityType.RUN: RunRow,
}


def document_id(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


def _card_text(content: dict[str, str | None] | None) -> str:
    return "\n".join(value for value in (content or {}).values() if value)


def _tag_fields(tags: dict[str, str]) -> Document:
    return {
        "tags": sorted(f"{k}={v}" for k, v in tags.items()),
        "tag_text": " ".join(f"{k} {v}" for k, v in sorted(tags.items())),
    }


def _common(entity_type: EntityType, row: Any, project: ProjectRow, **fields: Any) -> Document:
    """The fields every document has; ``fields`` adds the type's own."""
    return {
        "entity_type": entity_type.value,
        "entity_id": row.id,
        "project": project.name,
        "project_id": project.id,
        "name": row.name,
        "description": row.description,
        "owner": row.owner,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        # Archived models (with their versions) and datasets are hidden unless asked for.
        "archived": getattr(row, "archived_at", None) is not None,
        **_tag_fields({}),
        **fields,
    }


async def load_documents(session: AsyncSession, keys: Iterable[Key]) -> dict[Key, Document]:
    """The current documents of these entities (absent keys: deleted, so no document)."""
    ids: dict[EntityType, list[int]] = defaultdict(list)
    for entity_type, entity_id in keys:
        ids[entity_type].append(entity_id)
    found: dict[Key, Document] = {}
    for entity_type, entity_ids in ids.items():
        documents = await LOADERS[entity_type](session, entity_ids)
        found.update({(entity_type, i): d for i, d in documents.items()})
    return found


async def all_keys(session: AsyncSession) -> list[Key]:
    """Every entity the index should hold, type by type, in id order."""
    keys: list[Key] = []
    for entity_type, row in ROWS.items():
        keys += [(entity_type, i) for i in await session.scalars(select(row.id).order_by(row.id))]
    return keys


async def _cards(session: AsyncSession, subject_type: Kind, ids: Iterable[int]) -> dict[int, str]:
    return {
        d.subject_id: _card_text(d.content)
        for d in await session.scalars(
            select(DocumentRow).where(
                DocumentRow.subject_type == subject_type, DocumentRow.subject_id.in_(list(ids))
            )
        )
    }


async def _tags(
    session: AsyncSession, column: Any, ids: Iterable[int]
) -> dict[int, dict[str, str]]:
    table = column.class_
    found: dict[int, dict[str, str]] = defaultdict(dict)
    for owner, key, value in await session.execute(
        select(column, table.key, table.value).where(column.in_(list(ids)))
    ):
        found[owner][key] = value
    return found


async def _with_project(session: AsyncSession, row_type: Any, ids: list[int]) -> list[Any]:
    """(row, its project) for these ids of a type that belongs to a project directly."""
    stmt = (
        select(row_type, ProjectRow)
        .join(ProjectRow, ProjectRow.id == row_type.project_id)
        .where(row_type.id.in_(ids))
    )
    return list((await session.execute(stmt)).all())


async def _version_documents(session: AsyncSession, ids: list[int]) -> dict[int, Document]:
    rows = (
        await session.execute(
            select(ModelVersionRow, ModelRow, ProjectRow)
            .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
            .join(ProjectRow, ProjectRow.id == ModelRow.project_id)
            .where(ModelVersionRow.id.in_(ids))
        )
    ).all()
    model_ids = {model.id for _, model, _ in rows}
    model_tags = await _tags(session, ModelTagRow.model_id, model_ids)
    own_tags = await _tags(session, ModelVersionTagRow.version_id, ids)
    metrics = await _latest_metrics(session, MetricRow, MetricRow.version_id, ids)
    model_cards = await _cards(session, Kind.MODEL, model_ids)
    cards = await _cards(session, Kind.MODEL_VERSION, ids)
    trained = await _inputs(session, EdgeKind.TRAINED_ON, Kind.MODEL_VERSION, ids)
    documents: dict[int, Document] = {}
    for version, model, project in rows:
        datasets, dataset_tags = trained.get(version.id, (set(), set()))
        documents[version.id] = _common(
            EntityType.MODEL_VERSION,
            model,
            project,
            entity_id=version.id,
            number=version.number,
            version=version.semver,
            description="\n".join(filter(None, (version.description, model.description))),
            card="\n".join(filter(None, (model_cards.get(model.id), cards.get(version.id)))),
            stage=version.stage,
            framework=version.framework,
            task=model.task,
            # A version's own tags win over its model's.
            **_tag_fields({**model_tags.get(model.id, {}), **own_tags.get(version.id, {})}),
            metrics=metrics.get(version.id, []),
            trained_on=sorted(datasets),
            trained_on_tags=sorted(dataset_tags),
            created_at=version.created_at.isoformat(),
            updated_at=max(version.updated_at, model.updated_at).isoformat(),
        )
    return documents


async def _model_documents(session: AsyncSession, ids: list[int]) -> dict[int, Document]:
    """A model with the stages and frameworks of its versions, so that "models with a
    production version" is a facet filter."""
    rows = await _with_project(session, ModelRow, ids)
    stages: dict[int, set[str]] = defaultdict(set)
    frameworks: dict[int, set[str]] = defaultdict(set)
    for model_id, stage, framework in await session.execute(
        select(ModelVersionRow.model_id, ModelVersionRow.stage, ModelVersionRow.framework).where(
            ModelVersionRow.model_id.in_(ids)
        )
    ):
        stages[model_id].add(stage)
        if framework:
            frameworks[model_id].add(framework)
    tags = await _tags(session, ModelTagRow.model_id, ids)
    cards = await _cards(session, Kind.MODEL, ids)
    return {
        model.id: _common(
            EntityType.MODEL,
            model,
            project,
            card=cards.get(model.id, ""),
            task=model.task,
            stage=sorted(stages[model.id]),
            framework=sorted(frameworks[model.id]),
            **_tag_fields(tags.get(model.id, {})),
        )
        for model, project in rows
    }


async def _dataset_documents(session: AsyncSession, ids: list[int]) -> dict[int, Document]:
    rows = await _with_project(session, DatasetRow, ids)
    tags = await _tags(session, DatasetTagRow.dataset_id, ids)
    cards = await _cards(session, Kind.DATASET, ids)
    return {
        dataset.id: _common(
            EntityType.DATASET,
            dataset,
            project,
            card=cards.get(dataset.id, ""),
            **_tag_fields(tags.get(dataset.id, {})),
        )
        for dataset, project in rows
    }


async def _experiment_documents(session: AsyncSession, ids: list[int]) -> dict[int, Document]:
    rows = await _with_project(session, ExperimentRow, ids)
    return {
        experiment.id: _common(EntityType.EXPERIMENT, experiment, project)
        for experiment, project in rows
    }


async def _run_documents(session: AsyncSession, ids: list[int]) -> dict[int, Document]:
    """A run with its latest metrics and its input datasets (the lineage filter's "trained on")."""
    rows = (
        await session.execute(
            select(RunRow, ProjectRow)
            .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
            .join(ProjectRow, ProjectRow.id == ExperimentRow.project_id)
            .where(RunRow.id.in_(ids))
        )
    ).all()
    metrics = await _latest_metrics(session, RunMetricRow, RunMetricRow.run_id, ids)
    inputs = await _inputs(session, EdgeKind.USED_BY, Kind.RUN, ids)
    documents: dict[int, Document] = {}
    for run, project in rows:
        datasets, dataset_tags = inputs.get(run.id, (set(), set()))
        documents[run.id] = _common(
            EntityType.RUN,
            run,
            project,
            metrics=metrics.get(run.id, []),
            trained_on=sorted(datasets),
            trained_on_tags=sorted(dataset_tags),
        )
    return documents


LOADERS: dict[EntityType, Callable[[AsyncSession, list[int]], Awaitable[dict[int, Document]]]] = {
    EntityType.MODEL: _model_documents,
    EntityType.MODEL_VERSION: _version_documents,
    EntityType.DATASET: _dataset_documents,
    EntityType.EXPERIMENT: _experiment_documents,
    EntityType.RUN: _run_documents,
}


async def _latest_metrics(
    session: AsyncSession, table: Any, owner: Any, ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    """Per owner (version or run), the newest value of each (metric, dataset): the facts search
    filters on. Run metrics have no dataset."""
    dataset = getattr(table, "dataset", literal(None, String))
    rank = func.row_number().over(
        partition_by=(owner, table.name, dataset),
        order_by=(func.coalesce(table.step, -1).desc(), table.id.desc()),
    )
    ranked = (
        select(
            owner.label("owner"),
            table.name,
            dataset.label("dataset"),
            table.value,
            rank.label("n"),
        )
        .where(owner.in_(ids))
        .subquery()
    )
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for owner_id, name, dataset_name, value, _ in await session.execute(
        select(ranked).where(ranked.c.n == 1).order_by(ranked.c.name, ranked.c.dataset)
    ):
        found[owner_id].append({"name": name, "dataset": dataset_name, "value": value})
    return found


async def _inputs(
    session: AsyncSession, kind: EdgeKind, target_type: Kind, ids: list[int]
) -> dict[int, tuple[set[str], set[str]]]:
    """Per version (TRAINED_ON) or run (USED_BY): its input datasets (ids as strings) and their
    tags."""
    stmt = (
        select(
            LineageEdgeRow.target_id,
            DatasetVersionRow.dataset_id,
            DatasetTagRow.key,
            DatasetTagRow.value,
        )
        .join(DatasetVersionRow, DatasetVersionRow.id == LineageEdgeRow.source_id)
        .outerjoin(DatasetTagRow, DatasetTagRow.dataset_id == DatasetVersionRow.dataset_id)
        .where(
            LineageEdgeRow.kind == kind,
            LineageEdgeRow.source_type == Kind.DATASET_VERSION,
            LineageEdgeRow.target_type == target_type,
            LineageEdgeRow.target_id.in_(ids),
        )
    )
    found: dict[int, tuple[set[str], set[str]]] = {}
    for target_id, dataset_id, key, value in await session.execute(stmt):
        datasets, tags = found.setdefault(target_id, (set(), set()))
        datasets.add(str(dataset_id))
        if key is not None:
            tags.add(f"{key}={value}")
    return found
