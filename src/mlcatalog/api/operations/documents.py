"""upsertDocument: write a model or dataset card, keeping the earlier text as a revision."""

import strawberry
from strawberry import UNSET, relay

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode_any
from mlcatalog.api.operations.models import given
from mlcatalog.api.types.documents import Document
from mlcatalog.catalog import documents


@strawberry.input(description="Sections left out keep their text; null clears one.")
class UpsertDocumentInput:
    subject: relay.GlobalID = strawberry.field(description="A Model, ModelVersion or Dataset.")
    expected_revision: int | None = strawberry.field(
        default=None,
        description="Fail with CONFLICT unless the card is at this revision (0: none yet).",
    )
    intended_use: str | None = UNSET
    factors: str | None = UNSET
    training_data: str | None = UNSET
    evaluation_data: str | None = UNSET
    quantitative_analyses: str | None = UNSET
    ethical_considerations: str | None = UNSET
    caveats_and_recommendations: str | None = UNSET
    markdown: str | None = UNSET


@strawberry.type
class DocumentPayload:
    document: Document


@strawberry.type
class DocumentMutations:
    @strawberry.mutation
    async def upsert_document(self, info: Info, input: UpsertDocumentInput) -> DocumentPayload:
        subject_type, subject_id = decode_any(input.subject, "Model", "ModelVersion", "Dataset")
        content = given(**{name: getattr(input, name) for name in documents.SECTIONS})
        async with info.context.unit_of_work() as uow:
            row = await documents.upsert_document(
                uow,
                subject_type=subject_type,
                subject_id=subject_id,
                content=content,
                expected_revision=input.expected_revision,
            )
        return DocumentPayload(document=Document.from_row(row))
