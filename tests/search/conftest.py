"""Fixtures for the search suites: a real OpenSearch node and a fresh index per test."""

from collections.abc import AsyncIterator, Iterator

import pytest

from mlcatalog.search.opensearch import ALIAS, OpenSearchBackend
from tests.realservers import OpenSearchServer, opensearch_or_skip


@pytest.fixture(scope="session")
def opensearch() -> Iterator[OpenSearchServer]:
    server = opensearch_or_skip()
    yield server
    server.stop()


@pytest.fixture
async def backend(opensearch: OpenSearchServer) -> AsyncIterator[OpenSearchBackend]:
    backend = OpenSearchBackend(opensearch.url)
    await backend.client.indices.delete(index=f"{ALIAS}-*", ignore_unavailable=True)
    await backend.ensure_index()
    yield backend
    await backend.close()
