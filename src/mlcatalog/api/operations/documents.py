"""upsertDocument: write a model or dataset card, keeping the earlier text as a revision."""

import strawberry

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode_any
from mlcatalog.api.types.common import given
from mlcatalog.api.types.documents import Document, UpsertDocumentInput, UpsertDocumentPayload
from mlcatalog.catalog import documents


@strawberry.type
class DocumentMutations:
    @strawberry.mutation
    async def upsert_document(
        self, info: Info, input: UpsertDocumentInput
    ) -> UpsertDocumentPayload:
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
        return UpsertDocumentPayload(document=Document.from_row(row))
