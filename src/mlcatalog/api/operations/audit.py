"""auditLog, history and me."""

import json

import strawberry
from strawberry import relay

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode_any, row_id
from mlcatalog.api.pagination import ByteBudget, Connection, listing_connection
from mlcatalog.api.types.audit import JournalEntry, Me
from mlcatalog.catalog.errors import not_found
from mlcatalog.store import queries
from mlcatalog.store.journal import EntityType
from mlcatalog.store.paging import Listing
from mlcatalog.store.rows import JournalRow

# A page stops adding entries once their serialized changes pass this many bytes (it still holds
# at least one), so a page of big entries stays small; hasNextPage tells there is more.
PAGE_BYTES = 256 * 1024


def changes_bytes(row: JournalRow) -> int:
    return len(json.dumps(row.changes, separators=(",", ":")).encode())


@strawberry.input(description="Every given condition must hold.")
class AuditFilter:
    project: str | None = None
    entity: relay.GlobalID | None = None
    action: str | None = None
    actor: str | None = None


async def journal_page(
    info: Info,
    listing: Listing[JournalRow],
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Connection[JournalEntry]:
    return await listing_connection(
        info.context.loaders,
        listing,
        JournalEntry.from_row,
        first=first,
        after=after,
        last=last,
        before=before,
        budget=ByteBudget(weigh=changes_bytes, limit=PAGE_BYTES),
    )


@strawberry.type
class AuditQueries:
    @strawberry.field(description="The journal, newest first: who changed what, and when.")
    async def audit_log(
        self,
        info: Info,
        filter: AuditFilter | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[JournalEntry]:
        f = filter or AuditFilter()
        entity = (f.entity.type_name, row_id(f.entity.node_id)) if f.entity else None
        listing = queries.journal_listing(
            project=f.project,
            entity=entity,
            action=f.action,
            actor=f.actor,
            # Only the projects where the caller may read the journal.
            visible=info.context.access.visible("Query.auditLog"),
        )
        return await journal_page(info, listing, first, after, last, before)

    @strawberry.field(
        description="The journal entries about one object, newest first: its own changes, not"
        " those of its children (a model's versions have histories of their own). Deleted"
        " objects keep their history; an id the journal never named is NOT_FOUND."
    )
    async def history(
        self,
        info: Info,
        id: relay.GlobalID,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[JournalEntry]:
        entity = decode_any(id, *EntityType)
        # Only in the projects where the caller may read the journal: elsewhere, as if unknown.
        visible = info.context.access.visible("JournalEntry.action")
        listing = queries.journal_listing(entity=entity, visible=visible)
        page = await journal_page(info, listing, first, after, last, before)
        # A page past the end has a cursor before it, which sets one of the flags: an empty
        # page without either is an empty list, known without another query.
        around = page.page_info
        if not (page.edges or around.has_next_page or around.has_previous_page):
            raise not_found(f"{entity[0]} {entity[1]}")
        return page

    @strawberry.field
    def me(self, info: Info) -> Me:
        return Me(name=info.context.actor)
