"""The embedded backend's in-memory view answers exactly as SQL alone does (search_in_sql), on
random catalogs and requests, and sees every write another backend instance (another process)
committed before the search."""

import asyncio
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcatalog.search.documents import Document, Key
from mlcatalog.search.request import (
    EntityType,
    MetricRange,
    MetricStatsRequest,
    SearchRequest,
    SearchResult,
    Sort,
    SortBy,
    TrainedOn,
)
from mlcatalog.search.sql import SqlSearchBackend
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.rows import ProjectRow
from mlcatalog.store.visibility import Visible
from tests.conftest import Api
from tests.search.builders import catalog, index

WORDS = ["fraud", "fraudster", "churn", "spam", "model", "filter"]
FRAMEWORKS = ["pytorch", "xgboost", "sklearn"]
STAGES = ["PRODUCTION", "STAGING", "NONE"]
METRICS = ["auc", "loss"]
DATASETS = ["holdout", "train", None]
VALUES = [-1.0, 0.0, 0.5, 0.9, 0.9, 1.0, 2.5]  # repeated values: ties must break alike
MOMENTS = [datetime(2026, 11, d, 12, tzinfo=UTC) for d in (1, 2, 3)]
PROJECTS = [(1, "fraud"), (2, "vision"), (None, None)]

words = st.lists(st.sampled_from(WORDS), max_size=3).map(" ".join)
bodies = st.fixed_dictionaries(
    {
        "project": st.sampled_from(PROJECTS),
        "name": words,
        "description": words,
        "stage": st.sampled_from(STAGES),
        "framework": st.sampled_from(FRAMEWORKS),
        "tags": st.dictionaries(st.sampled_from(["team", "pii"]), st.sampled_from(["a", "b"])),
        "metrics": st.dictionaries(
            st.tuples(st.sampled_from(METRICS), st.sampled_from(DATASETS)),
            st.sampled_from(VALUES),
            max_size=4,
        ),
        "trained_on": st.lists(st.sampled_from(["1", "2"]), max_size=2, unique=True),
        "archived": st.booleans(),
        "created_at": st.sampled_from(MOMENTS),
        "updated_at": st.sampled_from(MOMENTS),
    }
)
keys = st.tuples(st.sampled_from(list(EntityType)), st.integers(1, 6))
catalogs = st.dictionaries(keys, st.one_of(st.none(), bodies), min_size=1, max_size=10)


def document(key: Key, drawn: dict[str, Any] | None) -> Document | None:
    if drawn is None:
        return None
    project_id, project = drawn["project"]
    return {
        "entity_type": key[0].value,
        "entity_id": key[1],
        "project": project,
        "project_id": project_id,
        "name": drawn["name"],
        "description": drawn["description"],
        "stage": drawn["stage"],
        "framework": drawn["framework"],
        "tags": sorted(f"{k}={v}" for k, v in drawn["tags"].items()),
        "tag_text": " ".join(f"{k} {v}" for k, v in sorted(drawn["tags"].items())),
        "metrics": [
            {"name": n, "dataset": d, "value": v} for (n, d), v in drawn["metrics"].items()
        ],
        "trained_on": drawn["trained_on"],
        "trained_on_tags": ["pii=true"] if "1" in drawn["trained_on"] else [],
        "archived": drawn["archived"],
        "created_at": drawn["created_at"].isoformat(),
        "updated_at": drawn["updated_at"].isoformat(),
    }


bounds = st.sampled_from([{"gte": 0.5}, {"lt": 0.9}, {"gt": 0.0, "lte": 1.0}, {"gte": 2.0}])
sorts = st.one_of(
    st.builds(
        Sort, st.sampled_from([SortBy.RELEVANCE, SortBy.UPDATED_AT, SortBy.NAME]), st.booleans()
    ),
    st.builds(
        Sort,
        st.just(SortBy.METRIC),
        st.booleans(),
        st.sampled_from(METRICS),
        st.sampled_from(DATASETS),
    ),
)
requests = st.builds(
    SearchRequest,
    text=st.one_of(st.none(), words, st.just("fraud"), st.just('"spam model"'), st.just("fra")),
    entity_types=st.lists(st.sampled_from(list(EntityType)), max_size=2, unique=True).map(tuple),
    filters=st.lists(
        st.tuples(
            st.sampled_from(["framework", "stage", "tag:team", "project"]),
            st.lists(
                st.sampled_from([*FRAMEWORKS, *STAGES, "a", "b", "fraud"]), max_size=2, unique=True
            ).map(tuple),
        ),
        max_size=2,
    ).map(tuple),
    updated_after=st.one_of(st.none(), st.sampled_from(MOMENTS[1:])),
    created_before=st.one_of(st.none(), st.sampled_from(MOMENTS[1:])),
    include_archived=st.booleans(),
    metrics=st.lists(
        st.builds(
            lambda name, dataset, b: MetricRange(name, dataset, **b),
            st.sampled_from(METRICS),
            st.sampled_from(DATASETS),
            bounds,
        ),
        max_size=2,
    ).map(tuple),
    trained_on=st.one_of(
        st.none(), st.just(TrainedOn(dataset_id=1)), st.just(TrainedOn(tag=("pii", "true")))
    ),
    sort=sorts,
    facets=st.lists(
        st.sampled_from(["framework", "stage", "tag:team", "type", "project"]),
        max_size=3,
        unique=True,
    ).map(tuple),
    metric_stats=st.lists(
        st.builds(
            MetricStatsRequest,
            st.sampled_from(METRICS),
            st.sampled_from(DATASETS),
            st.integers(1, 5),
        ),
        max_size=2,
    ).map(tuple),
    first=st.integers(0, 4),
    visible=st.sampled_from(
        [
            Visible(),
            Visible(only=frozenset({"fraud"})),
            Visible(hidden=frozenset({"fraud"})),
            Visible(only=frozenset()),
        ]
    ),
)


def comparable(result: SearchResult) -> Any:
    stats = [
        (s.name, s.dataset, s.count, s.min, s.max, s.histogram, s.avg is None)
        for s in result.metric_stats
    ]
    return result.hits, result.total, result.facets, stats


def same(view: SearchResult, sql: SearchResult) -> None:
    assert comparable(view) == comparable(sql)
    for ours, theirs in zip(view.metric_stats, sql.metric_stats, strict=True):
        if theirs.avg is not None:
            assert ours.avg == pytest.approx(theirs.avg, rel=1e-12)


@pytest.fixture
async def projects_url(database: Database, database_url: str) -> str:
    """The emptied database with the projects the drawn documents name (visibility reads
    their ids)."""
    async with database.unit_of_work(Origin(actor="test")) as uow:
        for project_id, name in PROJECTS[:2]:
            uow.session.add(ProjectRow(id=project_id, name=name, created_by="test"))
    return database_url


def test_the_view_answers_as_sql_does(projects_url: str) -> None:
    seqs = itertools.count(int(datetime.now(UTC).timestamp() * 1000))

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(catalog=catalogs, asked=st.lists(requests, min_size=1, max_size=4), fresh=st.booleans())
    def compare(catalog: dict[Key, Any], asked: list[SearchRequest], fresh: bool) -> None:
        async def run() -> None:
            database = Database(projects_url)
            writer = SqlSearchBackend(database)
            reader = SqlSearchBackend(database)
            try:
                if not fresh:  # a view loaded before the write: brought up to date in steps
                    await reader.search(SearchRequest())
                documents = {k: (document(k, d), next(seqs)) for k, d in catalog.items()}
                await writer.write(documents)
                for request in asked:
                    view = await reader.search(request)
                    same(view, await reader.search_in_sql(request))
                    if view.hits:  # the next page, from the last hit's cursor
                        after = SearchRequest(
                            **{**request.__dict__, "after": view.hits[-1].sort_key}
                        )
                        same(await reader.search(after), await reader.search_in_sql(after))
            finally:
                await database.dispose()

        asyncio.run(run())

    compare()


async def test_a_write_by_another_instance_is_seen_by_the_next_search(
    database: Database,
) -> None:
    reader, writer = SqlSearchBackend(database), SqlSearchBackend(database)
    body = {"name": "fraud-detector", "project_id": None, "framework": "pytorch", "metrics": []}
    body |= {"created_at": MOMENTS[0].isoformat(), "updated_at": MOMENTS[0].isoformat()}
    await writer.write({(EntityType.MODEL, 1): (body, 1)})
    first = await reader.search(SearchRequest(facets=("framework",), text="fraud"))
    assert first.total == 1 and first.facets["framework"][0].value == "pytorch"
    changed = {
        **body,
        "framework": "jax",
        "updated_at": (MOMENTS[0] + timedelta(days=1)).isoformat(),
    }
    await writer.write({(EntityType.MODEL, 1): (changed, 2), (EntityType.MODEL, 2): (body, 3)})
    second = await reader.search(SearchRequest(facets=("framework",), text="fraud"))
    assert second.total == 2
    assert {b.value: b.count for b in second.facets["framework"]} == {"jax": 1, "pytorch": 1}
    await writer.write({(EntityType.MODEL, 1): (None, 4)})  # deleted
    assert (await reader.search(SearchRequest())).total == 1
    # A rebuild that rewrote only model 2 deletes the rest: views load everything again.
    await writer.write({(EntityType.MODEL, 2): (body, 10)})
    await writer.finish_rebuild(None, 10)
    assert [h.entity_id for h in (await reader.search(SearchRequest())).hits] == [2]
    assert (await reader.stored_versions()) == {(EntityType.MODEL, 2): 10}


async def test_a_repeated_search_reads_the_generation_and_its_hits_bodies_only(
    api: Api, database: Database
) -> None:
    """Filters, sorts, counts and stats come from the view, and the text's matches from memory
    while nothing is written: the database is asked for the generation and the hits' bodies,
    each by an index (the plans are in bench/search.py --explain)."""
    backend = SqlSearchBackend(database)
    await catalog(api)
    await index(database, backend)
    request = SearchRequest(
        text="payments",
        filters=(("framework", ("pytorch", "xgboost")),),
        metrics=(MetricRange("auc", "holdout", gte=0.5),),
        facets=("framework", "stage", "type"),
        metric_stats=(MetricStatsRequest("auc", "holdout"),),
        sort=Sort(SortBy.METRIC, True, "auc", "holdout"),
    )
    await backend.search(request)  # loads the view
    counter = api.count_statements()
    result = await backend.search(request)
    assert result.total == 2 and result.facets["framework"][0].count == 1
    assert len(counter) == 2, counter.statements
    assert "search_generation" in counter.statements[0]
    assert not any("search_facets" in s or "search_metrics" in s for s in counter.statements)
    # Without text there is nothing to highlight: the generation is all the database is asked.
    await backend.search(replace(request, text=None))
    assert len(counter) == 3, counter.statements


async def test_a_search_cancelled_while_the_view_loads_leaves_the_load_going(
    database: Database,
) -> None:
    """The first load of a large catalog outlasts a search's deadline: the next search finds
    it done (or waits for it), instead of starting it again and being cancelled again."""
    backend = SqlSearchBackend(database)
    body = {"name": "fraud-detector", "project_id": None, "metrics": []}
    body |= {"created_at": MOMENTS[0].isoformat(), "updated_at": MOMENTS[0].isoformat()}
    await backend.write({(EntityType.MODEL, 1): (body, 1)})
    search = asyncio.create_task(backend.search(SearchRequest()))
    for _ in range(5000):  # until the search has started the load
        if backend.load is not None:
            break
        await asyncio.sleep(0.001)
    assert backend.load is not None
    search.cancel()
    with pytest.raises(asyncio.CancelledError):
        await search
    load = backend.load
    await load
    assert not load.cancelled() and backend.view.size == 1
    assert (await backend.search(SearchRequest())).total == 1
    assert backend.load is load  # loaded once
