"""What every search backend offers: the embedded one and OpenSearch answer the same contract."""

from collections.abc import Sequence
from typing import Protocol

from mlcatalog.search.documents import Document, Key
from mlcatalog.search.request import SearchRequest, SearchResult
from mlcatalog.settings import SearchSettings
from mlcatalog.store.database import Database


class SearchBackend(Protocol):
    async def search(self, request: SearchRequest) -> SearchResult:
        """Answer ``request``; raise SearchUnavailable when the engine cannot."""
        ...

    async def write(
        self, documents: dict[Key, tuple[Document | None, int]], target: str | None = None
    ) -> int:
        """Store each entity's document (None: a tombstone) at its journal sequence,
        unless the backend holds a newer one; returns how many it stored. ``target`` is a
        rebuild's target (None: the live index)."""
        ...

    async def start_rebuild(self) -> str | None:
        """Prepare a full rebuild; returns the target to write it to."""
        ...

    async def finish_rebuild(self, target: str | None, seq: int) -> None:
        """Make the rebuilt target live; everything written below ``seq`` is gone."""
        ...

    async def stored_documents(self, keys: Sequence[Key]) -> dict[Key, Document | None]:
        """The stored documents of these entities (None: a tombstone; absent: never written)."""
        ...

    async def stored_versions(self) -> dict[Key, int]:
        """Every stored document's key and journal sequence, tombstones included."""
        ...

    async def refresh(self) -> None:
        """Make what was written searchable now."""
        ...

    async def close(self) -> None: ...


def open_backend(settings: SearchSettings, database: Database) -> tuple[SearchBackend, str]:
    """The configured backend and the name of its journal checkpoint."""
    # Imported here: each backend module imports this one for the protocol.
    from mlcatalog.search.opensearch import OpenSearchBackend
    from mlcatalog.search.sql import SqlSearchBackend

    if settings.opensearch_url:
        return OpenSearchBackend(
            settings.opensearch_url,
            timeout=settings.timeout_seconds,
            connections=settings.connections,
        ), "opensearch"
    return SqlSearchBackend(database, timeout=settings.timeout_seconds), "embedded"
