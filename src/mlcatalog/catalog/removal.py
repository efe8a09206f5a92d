"""What a hard delete of model versions takes with it: counted for the journal, then removed.

The journal outlives the rows, so a delete's entry says what went with it (ids and counts,
never contents, so that a model of 10,000 versions still writes an entry of kilobytes): auditors
read it, and mirrors such as the search index refresh what pointed at the deleted rows.
"""

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Select, and_, delete, func, or_, select
from sqlalchemy.orm import QueryableAttribute

from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import (
    DocumentsRemoved,
    EntityType,
    IdSet,
    LineageRemoved,
    VersionsRemoved,
    id_runs,
)
from mlcatalog.store.rows import (
    AliasRow,
    CommentRow,
    DocumentRevisionRow,
    DocumentRow,
    LineageEdgeRow,
    MetricRow,
    ModelVersionRow,
    ModelVersionTagRow,
)


@dataclass(frozen=True)
class Taken:
    """What deleting some versions (and perhaps their model) removes."""

    versions: VersionsRemoved
    version_tags: int
    metrics: int
    comments: IdSet
    aliases: dict[str, int]  # alias → version id
    documents: DocumentsRemoved
    lineage: LineageRemoved


async def _count(uow: UnitOfWork, column: QueryableAttribute[int], versions: Select[int]) -> int:
    stmt = select(func.count(column)).where(column.in_(versions))
    return int(await uow.session.scalar(stmt) or 0)


async def take_versions(
    uow: UnitOfWork, versions: Select[int], *, model_id: int | None = None
) -> Taken:
    """Count what deleting the versions ``versions`` selects takes with it (and with
    ``model_id``, the model's own card), then delete the documents and lineage edges that point
    at them by (type, id), which no foreign key can cascade. Deleting the rows themselves
    (which cascades to metrics, tags, aliases and comments) is the caller's."""
    session = uow.session
    rows = (
        await session.execute(
            select(ModelVersionRow.id, ModelVersionRow.number, ModelVersionRow.stage).where(
                ModelVersionRow.id.in_(versions)
            )
        )
    ).all()
    stages: dict[str, int] = defaultdict(int)
    for _, _, stage in rows:
        stages[stage] += 1
    version_ids = {version_id for version_id, _, _ in rows}
    comment_ids = list(
        await session.scalars(select(CommentRow.id).where(CommentRow.version_id.in_(versions)))
    )
    aliases = dict(
        (
            await session.execute(
                select(AliasRow.name, AliasRow.version_id).where(AliasRow.version_id.in_(versions))
            )
        ).all()
    )

    subjects = and_(
        DocumentRow.subject_type == EntityType.MODEL_VERSION, DocumentRow.subject_id.in_(versions)
    )
    if model_id is not None:
        subjects = or_(
            subjects,
            and_(DocumentRow.subject_type == EntityType.MODEL, DocumentRow.subject_id == model_id),
        )
    documents = select(DocumentRow.id).where(subjects)
    document_ids = list(await session.scalars(documents))
    revisions = await _count(uow, DocumentRevisionRow.document_id, documents)

    upstream: dict[EntityType, set[int]] = defaultdict(set)
    downstream: dict[EntityType, set[int]] = defaultdict(set)
    sources = and_(
        LineageEdgeRow.source_type == EntityType.MODEL_VERSION,
        LineageEdgeRow.source_id.in_(versions),
    )
    targets = and_(
        LineageEdgeRow.target_type == EntityType.MODEL_VERSION,
        LineageEdgeRow.target_id.in_(versions),
    )
    edges = or_(sources, targets)
    edge_ids = []
    for edge in await session.execute(
        select(
            LineageEdgeRow.id,
            LineageEdgeRow.source_type,
            LineageEdgeRow.source_id,
            LineageEdgeRow.target_type,
            LineageEdgeRow.target_id,
        ).where(edges)
    ):
        edge_ids.append(edge.id)
        source = (EntityType(edge.source_type), edge.source_id)
        target = (EntityType(edge.target_type), edge.target_id)
        source_taken = source[0] == EntityType.MODEL_VERSION and source[1] in version_ids
        target_taken = target[0] == EntityType.MODEL_VERSION and target[1] in version_ids
        if source_taken and not target_taken:
            downstream[target[0]].add(target[1])
        elif target_taken and not source_taken:
            upstream[source[0]].add(source[1])

    taken = Taken(
        versions=VersionsRemoved(
            count=len(rows),
            ids=id_runs(version_ids),
            numbers=id_runs(number for _, number, _ in rows),
            stages=dict(sorted(stages.items())),
        ),
        version_tags=await _count(uow, ModelVersionTagRow.version_id, versions),
        metrics=await _count(uow, MetricRow.version_id, versions),
        comments=IdSet(count=len(comment_ids), ids=id_runs(comment_ids)),
        aliases=dict(sorted(aliases.items())),
        documents=DocumentsRemoved(
            count=len(document_ids), ids=id_runs(document_ids), revisions=revisions
        ),
        lineage=LineageRemoved(
            count=len(edge_ids),
            ids=id_runs(edge_ids),
            upstream={kind: id_runs(ids) for kind, ids in sorted(upstream.items())},
            downstream={kind: id_runs(ids) for kind, ids in sorted(downstream.items())},
        ),
    )
    if document_ids:
        await session.execute(delete(DocumentRow).where(subjects))
    if edge_ids:
        await session.execute(delete(LineageEdgeRow).where(edges))
    return taken
