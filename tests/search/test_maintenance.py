"""Keeping the mirror honest: reindex, search-check, a crash mid-batch, an engine that is down."""

import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update

from mlcatalog.search.indexer import Indexer, ensure_checkpoint
from mlcatalog.search.maintenance import check, reindex
from mlcatalog.search.opensearch import ALIASES, INDEX_PATTERN, MAPPING, SETTINGS, OpenSearchBackend
from mlcatalog.search.request import EntityType, SearchRequest, SearchUnavailable
from mlcatalog.search.sql import SqlSearchBackend
from mlcatalog.store import migrate
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.rows import SearchCheckpointRow
from tests import factories
from tests.conftest import Api
from tests.realservers import OpenSearchServer, start_opensearch
from tests.search.builders import DOCUMENTS, catalog, index, metric


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
    assert written == DOCUMENTS
    after = await backend.search(SearchRequest(facets=("framework",)))
    assert after.total == before.total == DOCUMENTS
    assert after.facets == before.facets
    if isinstance(backend, OpenSearchBackend):
        for alias in ALIASES.values():
            assert list(await backend.client.indices.get_alias(name=alias)) == [f"{alias}-v2"]
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
    assert drift.unread_entries > 0 and len(drift.missing) == DOCUMENTS
    await index(database, backend)
    assert (await check(database, backend, name="opensearch")).clean


async def test_reindex_into_an_empty_engine(api: Api, database: Database, backend: Any) -> None:
    if not isinstance(backend, OpenSearchBackend):
        pytest.skip("the embedded backend's tables always exist")
    await catalog(api)
    await index(database, backend)
    # An engine missing some of the indexes, then all of them, still answers (with less).
    await backend.client.indices.delete(index="mlcatalog-models-*")
    partial = await backend.search(SearchRequest(facets=("type",)))
    assert {b.value for b in partial.facets["type"]} == {
        "MODEL_VERSION",
        "DATASET",
        "EXPERIMENT",
        "RUN",
    }
    await backend.client.indices.delete(index=INDEX_PATTERN)
    empty = await backend.search(SearchRequest(facets=("type",), text="fraud"))
    assert empty.total == 0 and empty.hits == []
    assert await reindex(database, backend, name="opensearch") == DOCUMENTS
    await backend.refresh()
    assert (await backend.search(SearchRequest())).total == DOCUMENTS


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
        written = SearchRequest(entity_types=(EntityType.MODEL_VERSION,))
        assert (await backend.search(written)).total == 6
        await backend.close()
    finally:
        node.stop()


async def test_every_kind_of_change_reaches_the_documents_that_embed_it(
    api: Api, database: Database, backend: Any
) -> None:
    """search-check compares every document with the store, so one stale embedding fails it."""
    versions = await catalog(api)
    await index(database, backend)
    ids = await api(
        '{ dataset(project: "fraud", name: "customers") { id }'
        ' experiment(project: "fraud", name: "spam-tuning") { id runs { edges { node { id } } } }'
        ' model(project: "fraud", name: "churn-model") { id } }'
    )
    dataset, model = ids["dataset"]["id"], ids["model"]["id"]
    run = ids["experiment"]["runs"]["edges"][0]["node"]["id"]
    changes = [
        # a lineage edge: the run produced the churn model's version (before its promotion: a
        # version in PRODUCTION takes no new lineage)
        (
            "mutation($input: LinkLineageInput!) { linkLineage(input: $input) { edge { kind } } }",
            {"kind": "PRODUCED", "upstream": run, "downstream": versions["churn-model"]["id"]},
        ),
        # a version's stage: its model's stage list
        (
            "mutation($input: SetModelVersionStageInput!) { setModelVersionStage(input: $input)"
            " { modelVersion { id } } }",
            {"id": versions["churn-model"]["id"], "stage": "PRODUCTION"},
        ),
        # a dataset's tags: the version and the run trained on it
        (
            "mutation($input: SetTagsInput!) { setTags(input: $input) { __typename } }",
            {"id": dataset, "tags": [{"key": "pii", "value": "false"}]},
        ),
        # a model's card and description: its versions
        (
            "mutation($input: UpsertDocumentInput!) { upsertDocument(input: $input)"
            " { document { id } } }",
            {"subject": model, "intendedUse": "retention offers"},
        ),
        (
            "mutation($input: UpdateModelInput!) { updateModel(input: $input) { model { id } } }",
            {"id": model, "description": "who leaves next month"},
        ),
        (
            "mutation($input: FinishRunInput!) { finishRun(input: $input) { run { id } } }",
            {"id": run},
        ),
        # a version deleted: its model's stage and framework lists
        (
            "mutation($input: DeleteModelVersionInput!) { deleteModelVersion(input: $input) { deletedId } }",
            {"id": versions["spam-filter"]["id"]},
        ),
    ]
    # One change per indexer pass, so that no other entry of the batch hides a missed one.
    for mutation, variables in changes:
        await api(mutation, input=variables)
        await index(database, backend)
        drift = await check(database, backend, name="opensearch")
        assert drift.clean, (mutation, drift)
    production = await backend.search(
        SearchRequest(entity_types=(EntityType.MODEL,), filters=(("stage", ("PRODUCTION",)),))
    )
    assert production.total == 2  # churn-model promoted; spam-filter lost its only version


async def test_indexes_of_an_older_mapping_gain_its_new_fields_and_eager_ordinals(
    api: Api, database: Database, backend: Any
) -> None:
    if not isinstance(backend, OpenSearchBackend):
        pytest.skip("a mapping is OpenSearch's")
    await backend.client.indices.delete(index=INDEX_PATTERN)
    # Older: no archived field, and facet fields without eager global ordinals.
    fields = {
        k: {"type": "keyword"} if v.get("eager_global_ordinals") else v
        for k, v in MAPPING["properties"].items()
        if k != "archived"
    }
    for alias in ALIASES.values():
        await backend.client.indices.create(
            index=f"{alias}-v1",
            body={
                "settings": SETTINGS,
                "mappings": {**MAPPING, "properties": fields},
                "aliases": {alias: {}},
            },
        )
    await catalog(api)
    await index(database, backend)  # strict mapping: refused unless the field is added first
    assert (await check(database, backend, name="opensearch")).clean
    mapping = await backend.client.indices.get_mapping(index=ALIASES[EntityType.MODEL_VERSION])
    [properties] = [m["mappings"]["properties"] for m in mapping.values()]
    assert properties["framework"]["eager_global_ordinals"] is True


async def test_upgrading_to_search_over_every_type_replays_the_journal(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/older.db")
    try:
        # The catalog as it was before search covered every type (model versions only): written
        # with today's code (whose journal entries are hash-chained), then migrated back down.
        await migrate.upgrade(database)
        await catalog(Api(database))
        await migrate.downgrade(database, "20261124_0003")
        async with database.unit_of_work(Origin(actor="older indexer")) as uow:
            await ensure_checkpoint(uow, "embedded")
            await uow.session.execute(update(SearchCheckpointRow).values(seq=10_000))
            await uow.session.execute(
                text(
                    "INSERT INTO search_documents (doc_key, entity_type, entity_id, seq, deleted,"
                    " name, tokens, body) VALUES ('MODEL_VERSION:1', 'MODEL_VERSION', 1, 5,"
                    " false, 'fraud-detector', ' fraud detector ', '{}')"
                )
            )
        await migrate.upgrade(database)
        backend = SqlSearchBackend(database)
        drift = await check(database, backend, name="embedded")
        assert len(drift.missing) == DOCUMENTS and drift.unread_entries > 0
        await Indexer(database, backend, name="embedded").catch_up()
        assert (await check(database, backend, name="embedded")).clean
        assert (await backend.search(SearchRequest(text="fraud"))).total == 2
    finally:
        await database.dispose()


async def test_reindex_takes_the_lease_from_a_live_indexer(
    api: Api, database: Database, backend: Any
) -> None:
    """A live indexer that read past the rebuild's head wrote into the old index: it must not
    move the checkpoint past the head, or the new index would never get those entries."""
    await catalog(api)
    live = Indexer(database, backend, name="opensearch")
    await live._take_lease()
    await reindex(database, backend, name="opensearch")
    head = await live.checkpoint()
    await live._advance(head + 100)  # the batch it was writing during the rebuild
    assert await live.checkpoint() == head
