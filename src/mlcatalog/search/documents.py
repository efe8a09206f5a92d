"""Entity rows → search documents, in one place, loaded in batches."""

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mlcatalog.search.request import EntityType
from mlcatalog.store.rows import (
    DatasetTagRow,
    DatasetVersionRow,
    DocumentRow,
    LineageEdgeRow,
    MetricRow,
    ModelRow,
    ModelTagRow,
    ModelVersionRow,
    ModelVersionTagRow,
    ProjectRow,
)

Document = dict[str, Any]


def document_id(entity_type: EntityType, entity_id: int) -> str:
    return f"{entity_type}:{entity_id}"


def _card_text(content: dict[str, str | None] | None) -> str:
    return "\n".join(value for value in (content or {}).values() if value)


async def version_documents(
    session: AsyncSession, version_ids: Iterable[int]
) -> dict[int, Document]:
    """The documents of these model versions (absent ids: deleted, so no document)."""
    ids = list(version_ids)
    if not ids:
        return {}
    rows = (
        await session.execute(
            select(ModelVersionRow, ModelRow, ProjectRow.name)
            .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
            .join(ProjectRow, ProjectRow.id == ModelRow.project_id)
            .where(ModelVersionRow.id.in_(ids))
        )
    ).all()
    versions_of: dict[int, list[int]] = defaultdict(list)
    for version, model, _ in rows:
        versions_of[model.id].append(version.id)
    model_ids = set(versions_of)
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    for model_id, key, value in await session.execute(
        select(ModelTagRow.model_id, ModelTagRow.key, ModelTagRow.value).where(
            ModelTagRow.model_id.in_(model_ids)
        )
    ):
        for version_id in versions_of[model_id]:
            tags[version_id][key] = value
    # A version's own tags win over its model's.
    for version_id, key, value in await session.execute(
        select(
            ModelVersionTagRow.version_id, ModelVersionTagRow.key, ModelVersionTagRow.value
        ).where(ModelVersionTagRow.version_id.in_(ids))
    ):
        tags[version_id][key] = value
    metrics = await _latest_metrics(session, ids)
    cards: dict[tuple[str, int], str] = {
        (d.subject_type, d.subject_id): _card_text(d.content)
        for d in await session.scalars(
            select(DocumentRow).where(
                ((DocumentRow.subject_type == "ModelVersion") & DocumentRow.subject_id.in_(ids))
                | ((DocumentRow.subject_type == "Model") & DocumentRow.subject_id.in_(model_ids))
            )
        )
    }
    trained = await _training_data(session, ids)
    documents: dict[int, Document] = {}
    for version, model, project in rows:
        datasets, dataset_tags = trained.get(version.id, (set(), set()))
        documents[version.id] = {
            "entity_type": EntityType.MODEL_VERSION.value,
            "entity_id": version.id,
            "project": project,
            "project_id": model.project_id,
            "name": model.name,
            "number": version.number,
            "version": version.semver,
            "description": "\n".join(filter(None, (version.description, model.description))),
            "card": "\n".join(
                filter(
                    None, (cards.get(("Model", model.id)), cards.get(("ModelVersion", version.id)))
                )
            ),
            "stage": version.stage,
            "framework": version.framework,
            "task": model.task,
            "owner": model.owner,
            "tags": sorted(f"{k}={v}" for k, v in tags[version.id].items()),
            "tag_text": " ".join(f"{k} {v}" for k, v in sorted(tags[version.id].items())),
            "metrics": metrics.get(version.id, []),
            "trained_on": sorted(datasets),
            "trained_on_tags": sorted(dataset_tags),
            "created_at": version.created_at.isoformat(),
            "updated_at": max(version.updated_at, model.updated_at).isoformat(),
        }
    return documents


async def _latest_metrics(session: AsyncSession, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Per version, the newest value of each (metric, dataset): the facts search filters on."""
    rank = func.row_number().over(
        partition_by=(MetricRow.version_id, MetricRow.name, MetricRow.dataset),
        order_by=(func.coalesce(MetricRow.step, -1).desc(), MetricRow.id.desc()),
    )
    ranked = (
        select(
            MetricRow.version_id,
            MetricRow.name,
            MetricRow.dataset,
            MetricRow.value,
            rank.label("n"),
        )
        .where(MetricRow.version_id.in_(ids))
        .subquery()
    )
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for version_id, name, dataset, value, _ in await session.execute(
        select(ranked).where(ranked.c.n == 1).order_by(ranked.c.name, ranked.c.dataset)
    ):
        found[version_id].append({"name": name, "dataset": dataset, "value": value})
    return found


async def _training_data(
    session: AsyncSession, ids: list[int]
) -> dict[int, tuple[set[str], set[str]]]:
    """Per version: the datasets it was trained on (ids as strings) and their tags."""
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
            LineageEdgeRow.kind == "TRAINED_ON",
            LineageEdgeRow.source_type == "DatasetVersion",
            LineageEdgeRow.target_type == "ModelVersion",
            LineageEdgeRow.target_id.in_(ids),
        )
    )
    found: dict[int, tuple[set[str], set[str]]] = {}
    for version_id, dataset_id, key, value in await session.execute(stmt):
        datasets, tags = found.setdefault(version_id, (set(), set()))
        datasets.add(str(dataset_id))
        if key is not None:
            tags.add(f"{key}={value}")
    return found
