"""Model and dataset cards: typed sections plus Markdown; every edit is kept as a revision."""

from typing import Any

from sqlalchemy import select

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode, invalid
from mlcatalog.catalog.journal import digest, record
from mlcatalog.catalog.steps import project_of, stamp, touch
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import Action, Card, CardRevised, EntityType
from mlcatalog.store.rows import DocumentRevisionRow, DocumentRow, utcnow

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


# What a card can describe, and which kind of card it is.
KINDS = {
    EntityType.MODEL: "MODEL_CARD",
    EntityType.MODEL_VERSION: "MODEL_CARD",
    EntityType.DATASET: "DATASET_CARD",
}


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
    if subject_type not in KINDS:
        raise invalid(
            f"a card attaches to a model, a model version or a dataset, not a {subject_type}"
        )
    subject = EntityType(subject_type)
    project_id = await project_of(uow, subject, subject_id)
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
            kind=KINDS[subject],
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
    revision = DocumentRevisionRow(
        document_id=document.id,
        revision=document.revision,
        content=merged,
        created_at=utcnow(),
        created_by=uow.actor,
    )
    uow.session.add(revision)
    await uow.session.flush()
    # The journal keeps which revision, its digest and size: the Markdown stays in the revision.
    previous, written = digest(before), digest(merged)
    record(
        uow,
        Action.DOCUMENT_REVISED if current_revision else Action.DOCUMENT_CREATED,
        subject_id,
        entity_type=subject,
        project_id=project_id,
        before=Card(
            document_id=document.id,
            revision=current_revision,
            sha256=previous["sha256"],
            size=previous["size"],
        )
        if current_revision
        else None,
        after=CardRevised(
            document_id=document.id,
            revision=document.revision,
            revision_id=revision.id,
            sha256=written["sha256"],
            size=written["size"],
            sections=sorted(k for k, v in checked.items() if before.get(k) != v),
        ),
    )
    return document
