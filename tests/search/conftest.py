"""Fixtures for the search suites: every backend in turn, OpenSearch on a real node."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from mlcatalog.search.opensearch import INDEX_PATTERN, OpenSearchBackend
from mlcatalog.search.sql import SqlSearchBackend
from mlcatalog.store.database import Database
from tests.realservers import OpenSearchServer, opensearch_or_skip


@pytest.fixture(scope="session")
def opensearch() -> Iterator[OpenSearchServer]:
    server = opensearch_or_skip()
    yield server
    server.stop()


@pytest.fixture(params=["opensearch", "embedded"])
def search_engine(request: pytest.FixtureRequest) -> str | None:
    """Each search suite runs on OpenSearch (its URL) and on the embedded backend (None)."""
    if request.param == "embedded":
        return None
    server: OpenSearchServer = request.getfixturevalue("opensearch")
    return server.url


@pytest.fixture
async def backend(search_engine: str | None, database: Database) -> AsyncIterator[Any]:
    if search_engine is None:
        yield SqlSearchBackend(database)
        return
    backend = OpenSearchBackend(search_engine)
    await backend.client.indices.delete(index=INDEX_PATTERN, ignore_unavailable=True)
    await backend.ensure_index()
    yield backend
    await backend.close()
