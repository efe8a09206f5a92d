"""Model and dataset cards: typed sections plus Markdown; every edit is kept as a revision."""

from typing import Any

from sqlalchemy import select

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode, invalid
from mlcatalog.catalog.journal import record
from mlcatalog.catalog.steps import get, stamp, touch
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.rows import (
    DatasetRow,
    DocumentRevisionRow,
    DocumentRow,
    ModelRow,
    ModelVersionRow,
    utcnow,
)

# The sections of "Model Cards for Model Reporting" (Mitchell et al., 2019), plus free Markdown.
SECTIONS = (
    "intended_use",
    "factors",
    "training_data",
    "evaluation_data",
    "quantitative_analyses",
    "ethical_considerations",
    "caveats_and_recommendations",
    "markdown",
)


async def _subject_project(uow: UnitOfWork, subject_type: str, subject_id: int) -> tuple[int, str]:
    if subject_type == "Model":
        return (await get(uow, ModelRow, subject_id, "model")).project_id, "MODEL_CARD"
    if subject_type == "ModelVersion":
        version = await get(uow, ModelVersionRow, subject_id, "model version")
        return (await get(uow, ModelRow, version.model_id, "model")).project_id, "MODEL_CARD"
    if subject_type == "Dataset":
        return (await get(uow, DatasetRow, subject_id, "dataset")).project_id, "DATASET_CARD"
    raise invalid(f"a card attaches to a model, a model version or a dataset, not a {subject_type}")


async def upsert_document(
    uow: UnitOfWork,
    *,
    subject_type: str,
    subject_id: int,
    content: dict[str, str | None],
    expected_revision: int | None = None,
) -> DocumentRow:
    """Write the card of a subject. Sections left out keep their current text.

    ``expected_revision`` guards against lost updates: when given, it must be the current revision.
    """
    unknown = set(content) - set(SECTIONS)
    if unknown:
        raise invalid(f"unknown card sections: {', '.join(sorted(unknown))}")
    checked = {key: validation.text(value, key.replace("_", " ")) for key, value in content.items()}
    project_id, kind = await _subject_project(uow, subject_type, subject_id)
    document = await uow.session.scalar(
        select(DocumentRow).where(
            DocumentRow.subject_type == subject_type, DocumentRow.subject_id == subject_id
        )
    )
    current_revision = document.revision if document else 0
    if expected_revision is not None and expected_revision != current_revision:
        raise CatalogError(
            ErrorCode.CONFLICT,
            f"the card is at revision {current_revision}, not {expected_revision}: reload, retry",
        )
    before: dict[str, Any] = dict(document.content) if document else {}
    merged = {key: before.get(key) for key in SECTIONS} | checked
    if document is None:
        document = DocumentRow(
            project_id=project_id,
            subject_type=subject_type,
            subject_id=subject_id,
            kind=kind,
            revision=1,
            content=merged,
            **stamp(uow),
        )
        uow.session.add(document)
        await uow.session.flush()
    elif merged == before:
        return document
    else:
        document.revision += 1
        document.content = merged
        touch(document, uow)
    uow.session.add(
        DocumentRevisionRow(
            document_id=document.id,
            revision=document.revision,
            content=merged,
            created_at=utcnow(),
            created_by=uow.actor,
        )
    )
    record(
        uow,
        action="document.revised" if current_revision else "document.created",
        entity_type=subject_type,
        entity_id=subject_id,
        project_id=project_id,
        before={k: before.get(k) for k in checked if before.get(k) != checked[k]},
        after={k: v for k, v in checked.items() if before.get(k) != v}
        | {"revision": document.revision},
    )
    return document
