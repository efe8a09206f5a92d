"""What every search backend offers: the embedded one and OpenSearch answer the same contract."""

from typing import Protocol

from mlcatalog.search.documents import Document
from mlcatalog.search.request import SearchRequest, SearchResult


class SearchBackend(Protocol):
    async def search(self, request: SearchRequest) -> SearchResult:
        """Answer ``request``; raise SearchUnavailable when the engine cannot."""
        ...

    async def write(self, documents: dict[int, tuple[Document | None, int]]) -> int:
        """Store each model version's document (None: a tombstone) at its journal sequence,
        unless the backend holds a newer one; returns how many it stored."""
        ...

    async def stored_versions(self) -> dict[int, int]:
        """Every stored document's entity id and journal sequence, tombstones included."""
        ...

    async def refresh(self) -> None:
        """Make what was written searchable now."""
        ...

    async def close(self) -> None: ...
