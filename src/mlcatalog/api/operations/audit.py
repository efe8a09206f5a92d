"""auditLog and me."""

import json
from collections.abc import Sequence

import strawberry
from strawberry import relay

from mlcatalog.api.context import Info
from mlcatalog.api.pagination import Connection, connection, decode_cursor, page_size
from mlcatalog.api.types.audit import JournalEntry, Me
from mlcatalog.store import queries
from mlcatalog.store.queries import Order
from mlcatalog.store.rows import JournalRow

# A page stops adding entries once their serialized changes pass this many bytes (it still holds
# at least one), so a page of big entries stays small; hasNextPage tells there is more.
PAGE_BYTES = 256 * 1024
ORDER = Order((JournalRow.seq,), (True,))


def within_bytes(rows: Sequence[JournalRow], first: int, budget: int) -> int:
    """How many of the first ``first`` rows fit in ``budget`` bytes of changes (at least one)."""
    used = 0
    for taken, row in enumerate(rows[:first]):
        used += len(json.dumps(row.changes, separators=(",", ":")).encode())
        if used > budget and taken > 0:
            return taken
    return min(first, len(rows))


@strawberry.input(description="Every given condition must hold.")
class AuditFilter:
    project: str | None = None
    entity: relay.GlobalID | None = None
    action: str | None = None
    actor: str | None = None


@strawberry.type
class AuditQueries:
    @strawberry.field(
        description="The journal, newest first: who changed what, and when. A page holds at"
        " most `first` entries and stops once their changes pass 256 KiB (it holds one entry"
        " at least); pageInfo.hasNextPage says when more follow."
    )
    async def audit_log(
        self,
        info: Info,
        filter: AuditFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[JournalEntry]:
        f = filter or AuditFilter()
        entity = (
            (f.entity.type_name, int(f.entity.node_id))
            if f.entity and f.entity.node_id.isdigit()
            else None
        )
        stmt = queries.journal_query(
            project=f.project, entity=entity, action=f.action, actor=f.actor
        )
        size = page_size(first)
        cursor = decode_cursor("journal", ORDER, after)
        async with info.context.loaders.read() as session:
            rows = await queries.page(session, stmt, ORDER, size, cursor)

        async def count() -> int:
            async with info.context.loaders.read() as session:
                return await queries.count(session, stmt)

        # Cut to the byte budget; the row after the cut (when there is one) says a page follows.
        shown = within_bytes(rows, size, PAGE_BYTES)
        return connection(
            rows[: shown + 1], shown, "journal", ORDER.key, JournalEntry.from_row, count
        )

    @strawberry.field
    def me(self, info: Info) -> Me:
        return Me(name=info.context.actor)
