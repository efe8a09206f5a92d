"""The search contract, on every backend: OpenSearch on a real node, and the embedded backend
on SQLite and on PostgreSQL. Relevance order is engine-specific and never asserted."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update
from strawberry import relay

from mlcatalog.api.ids import decode
from mlcatalog.search.indexer import Indexer, LeaseHeld
from mlcatalog.search.maintenance import check
from mlcatalog.search.opensearch import ALIASES, OpenSearchBackend
from mlcatalog.search.request import (
    EntityType,
    InvalidSearch,
    MetricRange,
    MetricStatsRequest,
    SearchRequest,
    Sort,
    SortBy,
    TrainedOn,
)
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.rows import SearchCheckpointRow
from mlcatalog.store.visibility import Visible
from tests import factories
from tests.conftest import Api
from tests.search.builders import catalog, index, metric


def versions(**fields: Any) -> SearchRequest:
    """A search for model versions only: most cases here are about them."""
    return SearchRequest(entity_types=(EntityType.MODEL_VERSION,), **fields)


def names(result: Any, indexed: dict[str, Any]) -> list[str]:
    """The model names of the version hits, in order."""
    assert all(h.entity_type == EntityType.MODEL_VERSION for h in result.hits)
    ids = {v["entity_id"]: k for k, v in indexed.items()}
    return [ids[h.entity_id] for h in result.hits]


@pytest.fixture
async def indexed(api: Api, database: Database, backend: Any) -> dict[str, Any]:
    versions = await catalog(api)
    await index(database, backend)
    return {
        k: {**v, "entity_id": decode(relay.GlobalID.from_id(v["id"]), "ModelVersion")}
        for k, v in versions.items()
    }


async def test_text_finds_words_prefixes_and_phrases(backend: Any, indexed: dict[str, Any]) -> None:
    assert names(await backend.search(versions(text="fraud")), indexed) == ["fraud-detector"]
    assert names(await backend.search(versions(text="spa")), indexed) == ["spam-filter"]
    phrase = await backend.search(versions(text='"churn model"'))
    assert names(phrase, indexed) == ["churn-model"]


@pytest.mark.parametrize("text", ['fraud* OR (auc:>1) AND "', "\\/[]{}~^:!", "x" * 999])
async def test_query_syntax_is_plain_text(backend: Any, indexed: dict[str, Any], text: str) -> None:
    result = await backend.search(versions(text=text))
    assert result.total == 0


async def test_facet_counts_are_disjunctive(backend: Any, indexed: dict[str, Any]) -> None:
    result = await backend.search(
        versions(filters=(("framework", ("pytorch",)),), facets=("framework", "stage", "tag:team"))
    )
    assert names(result, indexed) == ["fraud-detector"]
    assert result.total == 1
    frameworks = {b.value: (b.count, b.selected) for b in result.facets["framework"]}
    assert frameworks == {"pytorch": (1, True), "xgboost": (1, False), "sklearn": (1, False)}
    assert {b.value: b.count for b in result.facets["stage"]} == {"PRODUCTION": 1}
    assert {b.value: b.count for b in result.facets["tag:team"]} == {"risk": 1}


async def test_one_metric_entry_must_match_name_dataset_and_range(
    backend: Any, indexed: dict[str, Any]
) -> None:
    holdout = await backend.search(versions(metrics=(MetricRange("auc", "holdout", gte=0.9),)))
    assert sorted(names(holdout, indexed)) == ["fraud-detector", "spam-filter"]
    # churn-model has auc 0.97 on train and 0.85 on holdout: no cross-matching.
    narrow = await backend.search(
        versions(metrics=(MetricRange("auc", "holdout", gte=0.9, lt=0.93),))
    )
    assert names(narrow, indexed) == ["spam-filter"]


async def test_sort_by_a_metric_on_a_dataset(backend: Any, indexed: dict[str, Any]) -> None:
    result = await backend.search(versions(sort=Sort(SortBy.METRIC, True, "auc", "holdout")))
    assert names(result, indexed) == ["fraud-detector", "spam-filter", "churn-model"]
    ascending = await backend.search(versions(sort=Sort(SortBy.METRIC, False, "auc", "train")))
    assert names(ascending, indexed) == ["fraud-detector", "spam-filter", "churn-model"]


async def test_trained_on_data_carrying_a_tag(backend: Any, indexed: dict[str, Any]) -> None:
    result = await backend.search(
        versions(trained_on=TrainedOn(tag=("pii", "true")), filters=(("stage", ("PRODUCTION",)),))
    )
    assert names(result, indexed) == ["spam-filter"]


async def test_metric_stats_over_the_filtered_set(backend: Any, indexed: dict[str, Any]) -> None:
    result = await backend.search(
        versions(
            filters=(("tag:team", ("risk",)),), metric_stats=(MetricStatsRequest("auc", "holdout"),)
        )
    )
    stats = result.metric_stats[0]
    assert (stats.count, stats.min, stats.max) == (2, 0.91, 0.95)
    assert stats.avg == pytest.approx(0.93)


async def test_a_histogram_has_equal_buckets_from_min_to_max(
    backend: Any, indexed: dict[str, Any]
) -> None:
    result = await backend.search(
        versions(metric_stats=(MetricStatsRequest("auc", "holdout", buckets=4),))
    )
    histogram = result.metric_stats[0].histogram
    assert [count for _, count in histogram] == [1, 0, 1, 1]  # 0.85 | - | 0.91 | 0.95
    assert [round(start, 4) for start, _ in histogram] == [0.85, 0.875, 0.9, 0.925]
    nothing = await backend.search(
        versions(text="nothing-matches", metric_stats=(MetricStatsRequest("auc", "holdout"),))
    )
    assert nothing.metric_stats[0].count == 0
    assert nothing.metric_stats[0].histogram == []


async def test_a_histogram_by_interval_aligns_on_its_multiples(
    backend: Any, indexed: dict[str, Any]
) -> None:
    result = await backend.search(
        versions(metric_stats=(MetricStatsRequest("auc", "holdout", interval=0.1),))
    )
    histogram = result.metric_stats[0].histogram
    assert [(round(start, 4), count) for start, count in histogram] == [(0.8, 1), (0.9, 2)]
    with pytest.raises(InvalidSearch, match="buckets"):
        await backend.search(
            versions(metric_stats=(MetricStatsRequest("auc", "holdout", interval=1e-6),))
        )


async def test_pages_with_search_after(backend: Any, indexed: dict[str, Any]) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = await backend.search(versions(sort=Sort(SortBy.NAME, False), first=1, after=after))
        if not page.hits:
            break
        seen += names(page, indexed)
        after = page.hits[-1].sort_key
    assert seen == ["churn-model", "fraud-detector", "spam-filter"]


async def test_pages_by_relevance_cover_every_hit_once(
    backend: Any, indexed: dict[str, Any]
) -> None:
    everything = await backend.search(SearchRequest(text="payments", first=50))
    seen: list[tuple[str, int]] = []
    after = None
    while page := (await backend.search(SearchRequest(text="payments", first=2, after=after))).hits:
        seen += [(h.entity_type.value, h.entity_id) for h in page]
        after = page[-1].sort_key
    assert seen == [(h.entity_type.value, h.entity_id) for h in everything.hits]
    assert len(seen) == everything.total == 6  # three models and their versions
    scores = [h.score for h in everything.hits]
    assert None not in scores and scores == sorted(scores, reverse=True)


async def test_creation_and_update_time_ranges(
    api: Api, database: Database, backend: Any, indexed: dict[str, Any]
) -> None:
    await asyncio.sleep(0.01)  # the engines keep milliseconds
    cut = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await factories.model(api, name="late-model")
    await api(
        "mutation($input: LogMetricsInput!) { logMetrics(input: $input) { modelVersion { id } } }",
        input={"id": indexed["churn-model"]["id"], "metrics": [metric("f1", 0.5, "holdout")]},
    )
    await index(database, backend)
    assert types(await backend.search(SearchRequest(created_after=cut))) == ["MODEL"]
    assert names(await backend.search(versions(updated_after=cut)), indexed) == ["churn-model"]
    before = await backend.search(versions(created_before=cut, updated_before=cut))
    assert sorted(names(before, indexed)) == ["fraud-detector", "spam-filter"]


async def test_visible_projects_bound_hits_totals_and_counts(
    api: Api, database: Database, backend: Any, indexed: dict[str, Any]
) -> None:
    await factories.project(api, name="vision")
    model = await factories.model(api, name="fraud-lookalike", project="vision")
    await factories.version(api, model["id"], framework="jax", stage="PRODUCTION")
    await index(database, backend)
    assert (await backend.search(versions())).total == 4
    for visible, total, frameworks in [
        (Visible(only=frozenset({"fraud"})), 3, {"pytorch", "xgboost", "sklearn"}),
        (Visible(only=frozenset({"vision"})), 1, {"jax"}),
        (Visible(hidden=frozenset({"fraud"})), 1, {"jax"}),
        (Visible(only=frozenset()), 0, set()),
    ]:
        result = await backend.search(versions(visible=visible, facets=("framework",)))
        assert result.total == len(result.hits) == total
        assert {b.value for b in result.facets["framework"]} == frameworks
        assert sum(b.count for b in result.facets["framework"]) == total


async def test_archived_models_and_datasets_are_hidden_unless_asked_for(
    api: Api, database: Database, backend: Any, indexed: dict[str, Any]
) -> None:
    model = await api('{ model(project: "fraud", name: "churn-model") { id } }')
    await api(
        "mutation($input: ArchiveModelInput!) { archiveModel(input: $input) { model { id } } }",
        input={"id": model["model"]["id"]},
    )
    await index(database, backend)
    hidden = await backend.search(SearchRequest(text="churn", facets=("type",)))
    assert hidden.total == 0 and hidden.facets["type"] == []
    shown = await backend.search(SearchRequest(text="churn", include_archived=True))
    assert types(shown) == ["MODEL", "MODEL_VERSION"]
    await api(
        "mutation($input: RestoreModelInput!) { restoreModel(input: $input) { model { id } } }",
        input={"id": model["model"]["id"]},
    )
    await index(database, backend)
    assert (await backend.search(SearchRequest(text="churn"))).total == 2


async def test_cards_of_a_million_characters_are_indexed(
    api: Api, database: Database, backend: Any, indexed: dict[str, Any]
) -> None:
    """PostgreSQL refuses a tsvector of over 1 MB of words: the embedded backend keeps a
    document's first 300,000 characters of words searchable, so the indexer never stalls."""
    model = await api('{ model(project: "fraud", name: "spam-filter") { id } }')
    sections = ["intendedUse", "factors", "trainingData", "evaluationData", "markdown"]
    sections += ["quantitativeAnalyses", "ethicalConsiderations", "caveatsAndRecommendations"]
    words = iter(f"w{i:014d}" for i in range(1_000_000))

    def section() -> str:
        return " ".join(next(words) for _ in range(6_000))[:99_999]

    upsert = "mutation($input: UpsertDocumentInput!) { upsertDocument(input: $input) { document { id } } }"
    await api(upsert, input={"subject": model["model"]["id"], **{s: section() for s in sections}})
    await api(upsert, input={"subject": indexed["spam-filter"]["id"], "factors": section()})
    await index(database, backend)
    assert (await check(database, backend, name="opensearch")).clean
    found = await backend.search(versions(text="w00000000000001"))
    assert names(found, indexed) == ["spam-filter"]


async def test_a_replayed_journal_changes_nothing_and_deletes_stay_deleted(
    api: Api, database: Database, backend: Any, indexed: dict[str, Any]
) -> None:
    model = await api('{ model(project: "fraud", name: "churn-model") { id } }')
    await api(
        "mutation($id: ID!) { deleteModel(input: {id: $id}) { deletedId } }",
        id=model["model"]["id"],
    )
    await index(database, backend)
    assert sorted(names(await backend.search(versions()), indexed)) == [
        "fraud-detector",
        "spam-filter",
    ]
    before = await backend.stored_versions()
    stored = [key for key in before if key[0] == EntityType.MODEL_VERSION]
    assert len(stored) == 3  # two documents and the deleted version's tombstone
    assert (
        EntityType.MODEL,
        decode(relay.GlobalID.from_id(model["model"]["id"]), "Model"),
    ) in before
    # Replay the whole journal from the start, as a rebuilt checkpoint would.
    async with database.unit_of_work(Origin(actor="test")) as uow:
        await uow.session.execute(update(SearchCheckpointRow).values(seq=0))
    await index(database, backend)
    assert await backend.stored_versions() == before
    result = await backend.search(SearchRequest(text="churn"))
    assert result.total == 0  # neither the model nor its version


async def test_metric_names_add_no_mapping_fields(
    api: Api, database: Database, backend: Any, indexed: dict[str, Any]
) -> None:
    if not isinstance(backend, OpenSearchBackend):
        pytest.skip("a mapping is OpenSearch's")

    async def field_count() -> int:
        mapping = await backend.client.indices.get_mapping(index=ALIASES[EntityType.MODEL_VERSION])
        return str(mapping).count("'type'")

    before = await field_count()
    version_id = indexed["churn-model"]["id"]  # in STAGING: a production version is locked
    metrics = [metric(f"custom_metric_{i}", i / 1000, "holdout") for i in range(1000)]
    await api(
        "mutation($input: LogMetricsInput!) { logMetrics(input: $input) { modelVersion { id } } }",
        input={"id": version_id, "metrics": metrics},
    )
    await index(database, backend)
    assert await field_count() == before
    found = await backend.search(
        versions(metrics=(MetricRange("custom_metric_999", "holdout", gt=0.9),))
    )
    assert names(found, indexed) == ["churn-model"]


async def test_a_second_indexer_waits_for_the_lease(database: Database, backend: Any) -> None:
    await Indexer(database, backend, name="opensearch").run_once()
    with pytest.raises(LeaseHeld):
        await Indexer(database, backend, name="opensearch").run_once()


def types(result: Any) -> list[str]:
    return sorted(h.entity_type.value for h in result.hits)


async def test_every_entity_type_is_found_and_results_mix(
    backend: Any, indexed: dict[str, Any]
) -> None:
    # The spam-filter model and its version, the experiment "spam-tuning", and its run
    # "tuning the spam filter"; nothing else says spam.
    result = await backend.search(SearchRequest(text="spam"))
    assert types(result) == ["EXPERIMENT", "MODEL", "MODEL_VERSION", "RUN"]
    assert result.total == 4
    pii = await backend.search(SearchRequest(filters=(("tag:pii", ("true",)),)))
    assert types(pii) == ["DATASET"]


async def test_type_counts_are_disjunctive_like_any_facet(
    backend: Any, indexed: dict[str, Any]
) -> None:
    runs = await backend.search(
        SearchRequest(text="spam", entity_types=(EntityType.RUN,), facets=("type",))
    )
    assert types(runs) == ["RUN"] and runs.total == 1
    counts = {b.value: (b.count, b.selected) for b in runs.facets["type"]}
    assert counts == {
        "EXPERIMENT": (1, False),
        "MODEL": (1, False),
        "MODEL_VERSION": (1, False),
        "RUN": (1, True),
    }


async def test_a_model_carries_its_versions_stages_and_frameworks(
    backend: Any, indexed: dict[str, Any]
) -> None:
    result = await backend.search(
        SearchRequest(
            entity_types=(EntityType.MODEL,),
            filters=(("stage", ("PRODUCTION",)),),
            facets=("framework", "stage"),
        )
    )
    assert types(result) == ["MODEL", "MODEL"]
    assert {b.value: b.count for b in result.facets["framework"]} == {"pytorch": 1, "sklearn": 1}
    assert {b.value: b.count for b in result.facets["stage"]} == {"PRODUCTION": 2, "STAGING": 1}


async def test_a_run_is_found_by_its_newest_metric_and_its_input_data(
    backend: Any, indexed: dict[str, Any]
) -> None:
    pii_runs = SearchRequest(
        entity_types=(EntityType.RUN,),
        trained_on=TrainedOn(tag=("pii", "true")),
        metrics=(MetricRange("loss", lte=0.5),),
    )
    assert types(await backend.search(pii_runs)) == ["RUN"]
    # 0.9 was the loss at step 1; step 2 logged 0.2, and only the newest value counts.
    old = SearchRequest(entity_types=(EntityType.RUN,), metrics=(MetricRange("loss", gte=0.5),))
    assert (await backend.search(old)).total == 0


def test_bad_requests_are_refused_before_any_engine() -> None:
    for bad in (
        {"facets": ("colour",)},
        {"filters": (("type", ("MODEL",)),)},
        {"first": -1},
        {"first": 10_000},
        {"text": "x" * 10_000},
        {"metric_stats": (MetricStatsRequest("auc", buckets=0),)},
        {"metric_stats": (MetricStatsRequest("auc", interval=0),)},
        {"metric_stats": (MetricStatsRequest("auc", interval=float("nan")),)},
        {"metrics": (MetricRange("auc"),)},
        {"sort": Sort(SortBy.METRIC)},
        {"created_after": datetime(2026, 2, 1, tzinfo=UTC), "created_before": datetime(2026, 1, 1)},
    ):
        with pytest.raises(InvalidSearch):
            SearchRequest(**bad)  # type: ignore[arg-type]


async def test_highlights_escape_the_stored_text_and_keep_their_tags(
    api: Api, database: Database, backend: Any
) -> None:
    await factories.project(api)
    description = """<script>alert("x")</script> fraud & 'quoted' <b>bold</b>"""
    await factories.model(api, name="markup", description=description)
    await index(database, backend)
    result = await backend.search(SearchRequest(text="fraud"))
    fragment = "".join(result.hits[0].highlights["description"])
    assert "<em>fraud</em>" in fragment
    assert "&lt;script&gt;" in fragment and "<script>" not in fragment
    assert "&lt;b&gt;" in fragment and "<b>" not in fragment
    assert "&amp;" in fragment and "&quot;" in fragment and "&#x27;quoted&#x27;" in fragment
