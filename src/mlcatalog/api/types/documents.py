"""Model and dataset cards with their revisions."""

from datetime import datetime
from typing import Self

import strawberry
from strawberry import UNSET, relay

from mlcatalog.api.context import Info
from mlcatalog.api.pagination import Connection, children_connection
from mlcatalog.api.types.common import RowNode
from mlcatalog.store.paging import REVISIONS_OF_DOCUMENT
from mlcatalog.store.rows import DocumentRevisionRow, DocumentRow


@strawberry.type(
    description="The sections of a model card (Mitchell et al., 2019) and free Markdown."
)
class CardSections:
    intended_use: str | None
    factors: str | None
    training_data: str | None
    evaluation_data: str | None
    quantitative_analyses: str | None
    ethical_considerations: str | None
    caveats_and_recommendations: str | None
    markdown: str | None


def sections(content: dict[str, str | None]) -> dict[str, str | None]:
    return {name: content.get(name) for name in CardSections.__annotations__}


@strawberry.type(description="One saved state of a card.")
class DocumentRevision(CardSections):
    revision: int
    created_at: datetime
    created_by: str

    @classmethod
    def from_row(cls, row: DocumentRevisionRow) -> Self:
        return cls(
            revision=row.revision,
            created_at=row.created_at,
            created_by=row.created_by,
            **sections(row.content),
        )


@strawberry.type(description="A model card or dataset card; every edit is kept as a revision.")
class Document(CardSections, RowNode):
    row_type = DocumentRow
    id: relay.NodeID[int]
    kind: str = strawberry.field(description="MODEL_CARD or DATASET_CARD.")
    revision: int
    updated_at: datetime
    updated_by: str
    project_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: DocumentRow) -> Self:
        return cls(
            id=row.id,
            project_id=row.project_id,
            kind=row.kind,
            revision=row.revision,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
            **sections(row.content),
        )

    @strawberry.field(description="Every revision, newest first.")
    async def revisions(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[DocumentRevision]:
        return await children_connection(
            info.context.loaders,
            REVISIONS_OF_DOCUMENT,
            self.id,
            DocumentRevision.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )


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
class UpsertDocumentPayload:
    document: Document
