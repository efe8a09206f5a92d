"""auditLog and me."""

import strawberry
from strawberry import relay

from mlcatalog.api.context import Info
from mlcatalog.api.ids import row_id
from mlcatalog.api.pagination import Connection, query_connection
from mlcatalog.api.types.audit import JournalEntry, Me
from mlcatalog.store import queries
from mlcatalog.store.queries import Order
from mlcatalog.store.rows import JournalRow


@strawberry.input(description="Every given condition must hold.")
class AuditFilter:
    project: str | None = None
    entity: relay.GlobalID | None = None
    action: str | None = None
    actor: str | None = None


@strawberry.type
class AuditQueries:
    @strawberry.field(description="The journal, newest first: who changed what, and when.")
    async def audit_log(
        self,
        info: Info,
        filter: AuditFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[JournalEntry]:
        f = filter or AuditFilter()
        entity = (f.entity.type_name, row_id(f.entity.node_id)) if f.entity else None
        stmt = queries.journal_query(
            project=f.project, entity=entity, action=f.action, actor=f.actor
        )
        order = Order((JournalRow.seq,), (True,))
        return await query_connection(
            info.context.loaders, stmt, order, "journal", first, after, JournalEntry.from_row
        )

    @strawberry.field
    def me(self, info: Info) -> Me:
        return Me(name=info.context.actor)
