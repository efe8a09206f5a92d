"""What only the OpenSearch backend does: counting through the shard request cache, and
aggregations that must equal a reference computed in Python on random data."""

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mlcatalog.search.documents import Document
from mlcatalog.search.opensearch import ALIASES, INDEX_PATTERN, OpenSearchBackend
from mlcatalog.search.request import (
    EntityType,
    MetricStatsRequest,
    SearchRequest,
)
from tests.realservers import OpenSearchServer

FRAMEWORKS = ["pytorch", "xgboost", "sklearn"]


@pytest.fixture
async def engine(opensearch: OpenSearchServer) -> AsyncIterator[OpenSearchBackend]:
    backend = OpenSearchBackend(opensearch.url)
    await backend.client.indices.delete(index=INDEX_PATTERN, ignore_unavailable=True)
    await backend.ensure_index()
    yield backend
    await backend.close()


def version(entity_id: int, framework: str, metrics: list[dict[str, Any]]) -> Document:
    return {
        "entity_type": EntityType.MODEL_VERSION.value,
        "entity_id": entity_id,
        "project": "p",
        "project_id": 1,
        "name": f"model-{entity_id}",
        "archived": False,
        "framework": framework,
        "tags": [],
        "metrics": metrics,
    }


async def write(engine: OpenSearchBackend, documents: list[Document]) -> None:
    await engine.write({(EntityType.MODEL_VERSION, d["entity_id"]): (d, 1) for d in documents})
    await engine.refresh()


async def cache_counts(engine: OpenSearchBackend) -> tuple[int, int]:
    stats = await engine.client.indices.stats(index=INDEX_PATTERN, metric="request_cache")
    cache = stats["_all"]["total"]["request_cache"]
    return cache["hit_count"], cache["miss_count"]


async def test_a_repeated_search_is_served_by_the_request_cache_until_the_index_changes(
    engine: OpenSearchBackend,
) -> None:
    await write(engine, [version(i, FRAMEWORKS[i % 3], []) for i in range(1, 7)])
    request = SearchRequest(
        entity_types=(EntityType.MODEL_VERSION,),
        filters=(("framework", ("pytorch",)),),
        facets=("framework",),
    )
    first = await engine.search(request)
    hits, misses = await cache_counts(engine)
    again = await engine.search(request)
    assert await cache_counts(engine) == (hits + 2, misses)  # the counts and the hits
    assert again == first
    assert (first.total, {b.value: b.count for b in first.facets["framework"]}) == (
        2,
        {"pytorch": 2, "xgboost": 2, "sklearn": 2},
    )
    await write(engine, [version(7, "pytorch", [])])  # a refresh with a change: no stale count
    changed = await engine.search(request)
    assert changed.total == 3
    assert {b.value: b.count for b in changed.facets["framework"]}["pytorch"] == 3


def reference_stats(
    values: list[float], wanted: MetricStatsRequest
) -> tuple[int, float, float, list[tuple[float, int]]]:
    """Count, min, max and histogram as request.py defines them: [from, to), the last open."""
    low, high = min(values), max(values)
    ranges = wanted.ranges(low, high)
    histogram = [
        (lo, sum(1 for v in values if lo <= v and (hi is None or v < hi))) for lo, hi in ranges
    ]
    return len(values), low, high, histogram


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_metric_stats_and_histograms_equal_a_python_reference_on_random_data(
    engine: OpenSearchBackend, seed: int
) -> None:
    rng = random.Random(seed)
    documents = []
    for i in range(1, 301):
        metrics = [
            # Ties and a narrow cluster put values on bucket edges; other names and datasets
            # must not count.
            {
                "name": name,
                "dataset": dataset,
                "value": rng.choice(
                    [
                        round(rng.uniform(-5, 5), 1),
                        rng.betavariate(8, 2),
                        0.5,
                    ]
                ),
            }
            for name in ("auc", "loss")
            for dataset in ("holdout", "train")
            if rng.random() < 0.8
        ]
        documents.append(version(i, rng.choice(FRAMEWORKS), metrics))
    await write(engine, documents)
    picked = {"pytorch", "sklearn"}
    for wanted in (
        MetricStatsRequest("auc", "holdout", buckets=rng.randint(1, 30)),
        MetricStatsRequest("loss", "train", interval=0.7),
        MetricStatsRequest("auc", None, buckets=7),
    ):
        values = [
            m["value"]
            for d in documents
            if d["framework"] in picked
            for m in d["metrics"]
            if m["name"] == wanted.name and wanted.dataset in (None, m["dataset"])
        ]
        result = await engine.search(
            SearchRequest(
                entity_types=(EntityType.MODEL_VERSION,),
                filters=(("framework", tuple(sorted(picked))),),
                metric_stats=(wanted,),
            )
        )
        stats = result.metric_stats[0]
        count, low, high, histogram = reference_stats(values, wanted)
        assert (stats.count, stats.min, stats.max) == (count, low, high)
        assert stats.avg == pytest.approx(sum(values) / len(values))
        assert stats.histogram == histogram


async def test_hits_of_chosen_types_search_only_their_index_while_every_type_is_counted(
    engine: OpenSearchBackend,
) -> None:
    await write(engine, [version(i, FRAMEWORKS[i % 3], []) for i in range(1, 4)])
    models = ALIASES[EntityType.MODEL]

    async def model_searches() -> int:
        stats = await engine.client.indices.stats(index=models, metric="search")
        return int(stats["_all"]["primaries"]["search"]["query_total"])

    before = await model_searches()
    result = await engine.search(
        SearchRequest(entity_types=(EntityType.MODEL_VERSION,), facets=("type",))
    )
    assert result.total == 3 and len(result.hits) == 3
    assert [(b.value, b.count) for b in result.facets["type"]] == [("MODEL_VERSION", 3)]
    assert await model_searches() == before + 1  # the counts only, not the hits
