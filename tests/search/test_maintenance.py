"""Keeping the mirror honest: reindex, search-check, a crash mid-batch, an engine that is down."""

import os
from typing import Any

import pytest

from mlcatalog.search.indexer import Indexer
from mlcatalog.search.maintenance import check, reindex
from mlcatalog.search.opensearch import ALIAS, OpenSearchBackend
from mlcatalog.search.request import SearchRequest, SearchUnavailable
from mlcatalog.store.database import Database
from tests import factories
from tests.conftest import Api
from tests.realservers import OpenSearchServer, start_opensearch
from tests.search.builders import catalog, index, metric


async def test_a_fresh_mirror_has_no_drift_and_a_change_shows_until_indexed(
    api: Api, database: Database, backend: Any
) -> None:
    versions = await catalog(api)
    await index(database, backend)
    name = "opensearch"  # the checkpoint's name; any backend
    assert (await check(database, backend, name=name)).clean
    await api(
        "mutation($input: LogMetricsInput!) { logMetrics(input: $input) { modelVersion { id } } }",
        input={"id": versions["churn-model"]["id"], "metrics": [metric("f1", 0.5, "holdout")]},
    )
    drift = await check(database, backend, name=name)
    assert drift.unread_entries == 1
    assert len(drift.stale) == 1
    await index(database, backend)
    assert (await check(database, backend, name=name)).clean


async def test_reindex_rebuilds_and_swaps_in_one_step(
    api: Api, database: Database, backend: Any
) -> None:
    await catalog(api)
    await index(database, backend)
    before = await backend.search(SearchRequest(facets=("framework",)))
    written = await reindex(database, backend, name="opensearch")
    await backend.refresh()
    assert written == 3
    after = await backend.search(SearchRequest(facets=("framework",)))
    assert after.total == before.total == 3
    assert after.facets == before.facets
    if isinstance(backend, OpenSearchBackend):
        aliases = await backend.client.indices.get_alias(name=ALIAS)
        assert list(aliases) == [f"{ALIAS}-v2"]
    assert (await check(database, backend, name="opensearch")).clean


async def test_an_indexer_killed_mid_batch_loses_nothing(
    api: Api, database: Database, backend: Any
) -> None:
    await catalog(api)
    crashed = Indexer(database, backend, name="opensearch", batch=3)

    async def die(_: int) -> None:
        raise RuntimeError("killed after writing, before moving the checkpoint")

    crashed._advance = die  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await crashed.run_once()
    await crashed.release()
    await index(database, backend)
    assert (await check(database, backend, name="opensearch")).clean


async def test_writes_go_on_while_the_engine_is_down_and_the_mirror_catches_up(
    api: Api, database: Database, backend: Any
) -> None:
    if not isinstance(backend, OpenSearchBackend):
        pytest.skip("the embedded backend is the database itself")
    await catalog(api)
    down = OpenSearchBackend("http://127.0.0.1:9", timeout=1.0)
    stalled = Indexer(database, down, name="opensearch")
    try:
        with pytest.raises(SearchUnavailable):
            await stalled.run_once()
    finally:
        await stalled.release()
        await down.close()
    drift = await check(database, backend, name="opensearch")
    assert drift.unread_entries > 0 and len(drift.missing) == 3
    await index(database, backend)
    assert (await check(database, backend, name="opensearch")).clean


async def test_reindex_into_an_empty_engine(api: Api, database: Database, backend: Any) -> None:
    if not isinstance(backend, OpenSearchBackend):
        pytest.skip("the embedded backend's tables always exist")
    await catalog(api)
    await backend.client.indices.delete(index=f"{ALIAS}-*")
    assert await reindex(database, backend, name="opensearch") == 3
    await backend.refresh()
    assert (await backend.search(SearchRequest())).total == 3


async def test_the_mirror_catches_up_after_the_node_stops_and_restarts_mid_stream(
    api: Api, database: Database, opensearch: OpenSearchServer
) -> None:
    if os.environ.get("MLCATALOG_TEST_OPENSEARCH_URL"):
        pytest.skip("needs a node of its own to stop")
    node = start_opensearch()  # its own node: the shared one stays up for the other tests
    try:
        backend = OpenSearchBackend(node.url, timeout=2.0)
        indexer = Indexer(database, backend, name="opensearch")
        versions = await catalog(api)
        await indexer.run_once()
        node.stop(keep_data=True)
        # Writes go on while the node is down: the journal grows, indexing fails softly.
        model = await factories.model(api, name="written-while-down")
        for _ in range(3):
            await factories.version(api, model["id"])
        await api(
            "mutation($input: LogMetricsInput!) { logMetrics(input: $input) { modelVersion { id } } }",
            input={"id": versions["churn-model"]["id"], "metrics": [metric("f1", 0.7, "holdout")]},
        )
        with pytest.raises(SearchUnavailable):
            await indexer.run_once()
        await indexer.release()
        await backend.close()
        node = start_opensearch(node.home)
        backend = OpenSearchBackend(node.url)
        await Indexer(database, backend, name="opensearch").catch_up()
        drift = await check(database, backend, name="opensearch")
        assert drift.clean, drift
        assert (await backend.search(SearchRequest())).total == 6
        await backend.close()
    finally:
        node.stop()
