"""The OpenSearch backend: one index per entity type behind an alias, written with the journal
sequence as external version, queried with disjunctive facets and nested metric filters."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import ConnectionTimeout, NotFoundError, TransportError

from mlcatalog.search.documents import Document, Key
from mlcatalog.search.metrics import SEARCH_TIMEOUTS
from mlcatalog.search.request import (
    TAG_FACET,
    TYPE_FACET,
    Bucket,
    EntityType,
    Hit,
    MetricStats,
    SearchRequest,
    SearchResult,
    SearchUnavailable,
    SortBy,
)

# One index per entity type, each behind its alias; a rebuild makes a new version of all five.
ALIASES = {
    EntityType.MODEL: "mlcatalog-models",
    EntityType.MODEL_VERSION: "mlcatalog-model-versions",
    EntityType.DATASET: "mlcatalog-datasets",
    EntityType.EXPERIMENT: "mlcatalog-experiments",
    EntityType.RUN: "mlcatalog-runs",
}
INDEX_PATTERN = "mlcatalog-*"
KEYWORD = {"type": "keyword"}
# Facet fields: their global ordinals are built at refresh, not by the first count after it (the
# request cache is empty then too). An updatable parameter: ensure_index sets it on live indexes.
FACET_KEYWORD = {"type": "keyword", "eager_global_ordinals": True}
TEXT = {"type": "text", "analyzer": "english"}
# One mapping for every type (a type leaves out what it lacks). dynamic: strict — an unexpected
# field is a bug, and 10,000 metric names add no field: metrics are nested {name, dataset, value}.
MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "entity_type": FACET_KEYWORD,
        "entity_id": {"type": "long"},
        "deleted": {"type": "boolean"},
        "archived": {"type": "boolean"},
        "project": FACET_KEYWORD,
        "project_id": {"type": "long"},
        "name": {"type": "text", "analyzer": "standard", "fields": {"raw": KEYWORD}},
        "number": {"type": "integer"},
        "version": KEYWORD,
        "description": TEXT,
        "card": TEXT,
        "stage": FACET_KEYWORD,
        "framework": FACET_KEYWORD,
        "task": FACET_KEYWORD,
        "owner": FACET_KEYWORD,
        "tags": FACET_KEYWORD,
        "tag_text": {"type": "text", "analyzer": "standard"},
        "metrics": {
            "type": "nested",
            "properties": {"name": KEYWORD, "dataset": KEYWORD, "value": {"type": "double"}},
        },
        "trained_on": KEYWORD,
        "trained_on_tags": KEYWORD,
        "created_at": {"type": "date"},
        "updated_at": {"type": "date"},
    },
}
SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0}
TEXT_FIELDS = ["name^3", "description", "card", "tag_text"]
HIGHLIGHTED = ["name", "description", "card"]


def _facet_filter(facet: str, values: tuple[str, ...]) -> dict[str, Any]:
    if facet.startswith(TAG_FACET):
        key = facet[len(TAG_FACET) :]
        return {"terms": {"tags": [f"{key}={value}" for value in values]}}
    return {"terms": {facet: list(values)}}


def _metric_entry(
    name: str, dataset: str | None, bounds: dict[str, float] | None = None
) -> dict[str, Any]:
    """One nested metric entry matching name, dataset and bounds together (never across entries)."""
    must: list[dict[str, Any]] = [{"term": {"metrics.name": name}}]
    if dataset is not None:
        must.append({"term": {"metrics.dataset": dataset}})
    if bounds:
        must.append({"range": {"metrics.value": bounds}})
    return {"bool": {"filter": must}}


def _text_query(text: str) -> dict[str, Any]:
    """Quoted parts are phrases, the rest words with the last one a prefix; no query syntax."""
    parts = text.split('"')
    phrases = [p.strip() for p in parts[1::2] if p.strip()]
    words = " ".join(parts[0::2]).strip()
    must: list[dict[str, Any]] = []
    if words:
        must.append(
            {
                "multi_match": {
                    "query": words,
                    "type": "bool_prefix",
                    "fields": TEXT_FIELDS,
                    "operator": "and",
                }
            }
        )
    must += [
        {"multi_match": {"query": p, "type": "phrase", "fields": TEXT_FIELDS}} for p in phrases
    ]
    return {"bool": {"must": must}} if must else {"match_all": {}}


@dataclass(frozen=True)
class Plan:
    """A request as engine bodies: the hits, and everything counted over the filtered set.

    The two are separate requests (sent together in one msearch) so that the counts — facets,
    metric stats and the exact total — are a size-0 request the shard request cache serves until
    the next refresh changes the index, whatever page or sort the hits ask for; and so that the
    hits need no exact count and score only what can still reach the top (max-score pruning).
    A refresh between the two can make them see the index one refresh apart, as the
    histogram's second request always could: near-real-time search, not a snapshot.
    """

    query: dict[str, Any]  # without the facet filters
    facet_filters: dict[str, dict[str, Any]]
    hits: dict[str, Any] | None  # None: no hits asked for (first == 0)
    counts: dict[str, Any]


def _filtered(query: dict[str, Any], filters: list[dict[str, Any]]) -> dict[str, Any]:
    return {"bool": {"filter": [query, *filters]}} if filters else query


def build_query(request: SearchRequest) -> dict[str, Any]:
    """The query without the facet filters (each facet's counts drop its own)."""
    base: list[dict[str, Any]] = [{"term": {"deleted": False}}]
    if request.visible.only is not None:
        base.append({"terms": {"project": sorted(request.visible.only)}})
    elif request.visible.hidden:
        base.append({"bool": {"must_not": {"terms": {"project": sorted(request.visible.hidden)}}}})
    for field, (after, before) in request.time_ranges().items():
        times = {"gte": after, "lt": before}
        base.append({"range": {field: {k: v.isoformat() for k, v in times.items() if v}}})
    for bounds in request.metrics:
        limits = {k: v for k in ("gte", "gt", "lte", "lt") if (v := getattr(bounds, k)) is not None}
        base.append(
            {
                "nested": {
                    "path": "metrics",
                    "query": _metric_entry(bounds.name, bounds.dataset, limits),
                }
            }
        )
    if request.trained_on is not None:
        if request.trained_on.dataset_id is not None:
            base.append({"term": {"trained_on": str(request.trained_on.dataset_id)}})
        if request.trained_on.tag is not None:
            key, value = request.trained_on.tag
            base.append({"term": {"trained_on_tags": f"{key}={value}"}})
    text = request.text.strip() if request.text else ""
    query: dict[str, Any] = {"bool": {"filter": base}}
    if not request.include_archived:  # must_not: a document indexed before the field counts
        query["bool"]["must_not"] = [{"term": {"archived": True}}]
    if text:
        query["bool"]["must"] = [_text_query(text)]
    return query


def build_plan(request: SearchRequest) -> Plan:
    query = build_query(request)
    facet_filters = {
        facet: _facet_filter(facet, values) for facet, values in request.filters if values
    }
    if request.entity_types:
        facet_filters[TYPE_FACET] = {
            "terms": {"entity_type": [t.value for t in request.entity_types]}
        }
    selected = list(facet_filters.values())
    aggregations: dict[str, Any] = {}
    for facet in request.facets:
        others = [f for name, f in facet_filters.items() if name != facet]
        field, include = (
            ("tags", f"{facet[len(TAG_FACET) :]}=.*")
            if facet.startswith(TAG_FACET)
            else ("entity_type" if facet == TYPE_FACET else facet, None)
        )
        terms: dict[str, Any] = {"field": field, "size": 100}
        if include:
            terms["include"] = _escape_regex(include)
        aggregations[f"facet:{facet}"] = {
            "filter": {"bool": {"filter": others}},
            "aggs": {"values": {"terms": terms}},
        }
    for i, stats in enumerate(request.metric_stats):
        aggregations[f"stats:{i}"] = {
            "filter": {"bool": {"filter": selected}},
            "aggs": {
                "metrics": {
                    "nested": {"path": "metrics"},
                    "aggs": {
                        "entry": {
                            "filter": _metric_entry(stats.name, stats.dataset),
                            "aggs": {"values": {"stats": {"field": "metrics.value"}}},
                        }
                    },
                }
            },
        }
    counts: dict[str, Any] = {
        "size": 0,
        "query": query,
        # The total counts after post_filter: the selected facets bound it, not the facet counts.
        "track_total_hits": True,
        "aggs": aggregations,
    }
    if selected:
        counts["post_filter"] = {"bool": {"filter": selected}}
    hits: dict[str, Any] | None = None
    if request.first:
        hits = {
            # Selected facets in filter context: the same hits, no scoring of the filters.
            "query": _filtered(query, selected),
            "size": request.first,
            # Hits are hydrated from the store, and the sort's tiebreaker names them: no source
            # is read for a hit (highlighting reads what it highlights).
            "_source": False,
            # The exact total comes from the counts: the hits may skip what cannot reach the top
            # (text at 100k versions: 9 → 3 ms). Not under a nested metric sort: there the
            # engine's attempt to skip by the sort field costs more than it saves (2 → 8 ms).
            "track_total_hits": request.sort.by == SortBy.METRIC,
            "sort": _sort(request),
        }
        if request.text and request.text.strip():
            # The html encoder escapes the stored text: only the <em> tags are markup.
            hits["highlight"] = {
                "encoder": "html",
                "fields": {f: {} for f in HIGHLIGHTED},
                "require_field_match": False,
            }
        if request.after is not None:
            hits["search_after"] = list(request.after)
    return Plan(query=query, facet_filters=facet_filters, hits=hits, counts=counts)


def _escape_regex(pattern: str) -> str:
    """The tag key is literal; only the trailing ".*" is a pattern (Lucene regex syntax)."""
    key = pattern[:-2]
    special = set('.?+*|{}[]()"\\#@&<>~')
    return "".join(f"\\{c}" if c in special else c for c in key) + ".*"


# Last in every sort: a hit's sort values end with its type and id.
TIEBREAKER = [{"entity_type": {"order": "asc"}}, {"entity_id": {"order": "asc"}}]


def _sort(request: SearchRequest) -> list[Any]:
    order = "desc" if request.sort.descending else "asc"
    by = request.sort.by
    if by == SortBy.RELEVANCE:
        first: Any = {"_score": {"order": order}}
    elif by == SortBy.UPDATED_AT:
        first = {"updated_at": {"order": order}}
    elif by == SortBy.NAME:
        first = {"name.raw": {"order": order}}
    else:
        first = {
            "metrics.value": {
                "order": order,
                "mode": "max" if request.sort.descending else "min",
                "missing": "_last",
                "nested": {
                    "path": "metrics",
                    "filter": _metric_entry(request.sort.metric or "", request.sort.dataset),
                },
            }
        }
    # A unique tiebreaker makes search_after pages exact; the same in the embedded backend.
    return [first, *TIEBREAKER]


def indices(request: SearchRequest, *, counts: bool = False) -> str:
    """The aliases to search: the types asked for, or all when the counts count types."""
    types = (
        request.entity_types
        if request.entity_types and not (counts and TYPE_FACET in request.facets)
        else tuple(EntityType)
    )
    return ",".join(ALIASES[t] for t in types)


def _index(entity_type: EntityType, target: str | None) -> str:
    """The live alias of a type, or its index in a rebuild (``target`` is the version, "v3")."""
    return ALIASES[entity_type] if target is None else f"{ALIASES[entity_type]}-{target}"


class OpenSearchBackend:
    def __init__(self, url: str, *, timeout: float = 5.0, connections: int = 64) -> None:
        self.client = AsyncOpenSearch(
            hosts=[url], timeout=timeout, max_retries=0, maxsize=connections
        )
        self._index_ready = False

    async def close(self) -> None:
        await self.client.close()

    async def ensure_index(self) -> None:
        """Create the first index version behind each alias that does not exist yet, and add
        the fields a newer mapping has to those that do (the mapping is strict)."""
        for alias in ALIASES.values():
            if await self.client.indices.exists_alias(name=alias):
                await self.client.indices.put_mapping(
                    index=alias, body={"properties": MAPPING["properties"]}
                )
            else:
                await self.client.indices.create(
                    index=f"{alias}-v1",
                    body={"settings": SETTINGS, "mappings": MAPPING, "aliases": {alias: {}}},
                )

    async def write(
        self, documents: dict[Key, tuple[Document | None, int]], target: str | None = None
    ) -> int:
        """Index (or tombstone, for None) each document at its journal sequence.

        Returns how many writes OpenSearch took; older versions than stored are skipped by
        OpenSearch itself (external versioning), so replays never overwrite newer data.
        """
        if not documents:
            return 0
        lines: list[dict[str, Any]] = []
        try:
            if target is None and not self._index_ready:  # a rebuild's target exists already
                await self.ensure_index()
                self._index_ready = True
        except (OpenSearchConnectionError, ConnectionTimeout) as error:
            raise SearchUnavailable(str(error)) from error
        for (entity_type, entity_id), (document, version) in documents.items():
            source = document or {"entity_type": entity_type.value, "entity_id": entity_id}
            lines.append(
                {
                    "index": {
                        "_index": _index(entity_type, target),
                        "_id": str(entity_id),
                        "version": version,
                        "version_type": "external",
                    }
                }
            )
            lines.append({**source, "deleted": document is None})
        try:
            response = await self.client.bulk(body=lines, refresh=False)
        except (OpenSearchConnectionError, ConnectionTimeout) as error:
            raise SearchUnavailable(str(error)) from error
        taken = 0
        for item in response["items"]:
            result = item["index"]
            if result.get("status") == 409:
                continue  # a newer version is already there
            if "error" in result:
                raise SearchUnavailable(f"OpenSearch refused a document: {result['error']}")
            taken += 1
        return taken

    async def start_rebuild(self) -> str | None:
        """A new version of every type's index beside the live ones; returns the version."""
        existing = await self.client.indices.get(index=INDEX_PATTERN, ignore_unavailable=True)
        numbers = [int(m.group(1)) for name in existing if (m := re.search(r"-v(\d+)$", name))]
        target = f"v{max(numbers, default=0) + 1}"
        # No refreshes while the rebuild writes (one at the end): bulk loading goes faster.
        settings = {**SETTINGS, "refresh_interval": "-1"}
        for entity_type in ALIASES:
            await self.client.indices.create(
                index=_index(entity_type, target), body={"settings": settings, "mappings": MAPPING}
            )
        return target

    async def finish_rebuild(self, target: str | None, seq: int) -> None:
        """Swap every alias in one atomic action, so search never finds nothing; drop the old."""
        assert target is not None
        rebuilt = ",".join(_index(t, target) for t in ALIASES)
        await self.client.indices.put_settings(
            index=rebuilt, body={"index": {"refresh_interval": None}}
        )
        await self.client.indices.refresh(index=rebuilt)
        actions: list[dict[str, Any]] = []
        old: list[str] = []
        for entity_type, alias in ALIASES.items():
            try:
                current = list(await self.client.indices.get_alias(name=alias))
            except NotFoundError:  # the first build: no alias yet
                current = []
            actions.append({"add": {"index": _index(entity_type, target), "alias": alias}})
            actions += [{"remove": {"index": index, "alias": alias}} for index in current]
            old += current
        await self.client.indices.update_aliases(body={"actions": actions})
        for index in old:
            await self.client.indices.delete(index=index)

    async def stored_documents(self, keys: Sequence[Key]) -> dict[Key, Document | None]:
        if not keys:
            return {}
        wanted = [{"_index": ALIASES[t], "_id": str(i)} for t, i in keys]
        response = await self.client.mget(body={"docs": wanted})
        found: dict[Key, Document | None] = {}
        for (entity_type, entity_id), doc in zip(keys, response["docs"], strict=True):
            if doc.get("found"):
                source = dict(doc["_source"])
                deleted = source.pop("deleted", False)
                found[(entity_type, entity_id)] = None if deleted else source
        return found

    async def stored_versions(self) -> dict[Key, int]:
        found: dict[Key, int] = {}
        for entity_type, alias in ALIASES.items():
            body: dict[str, Any] = {
                "size": 1000,
                "version": True,
                "sort": ["entity_id"],
                "_source": False,
            }
            while True:
                response = await self.client.search(index=alias, body=body, ignore_unavailable=True)
                page = response["hits"]["hits"]
                found.update({(entity_type, int(hit["_id"])): hit["_version"] for hit in page})
                if len(page) < body["size"]:
                    break
                body["search_after"] = page[-1]["sort"]
        return found

    async def refresh(self) -> None:
        await self.client.indices.refresh(index=",".join(ALIASES.values()), ignore_unavailable=True)

    async def _msearch(self, searches: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Each body's response, in one round trip; None for one whose indices do not exist yet.

        Every body may be served by the shard request cache (its entries die with the next
        refresh that changes a shard, so a cached answer is the one the engine would give now).
        """
        # An alias not created yet (no document of its type so far) is no error.
        lines: list[dict[str, Any]] = []
        for index, body in searches:
            lines += [{"index": index, "request_cache": True, "ignore_unavailable": True}, body]
        try:
            response = await self.client.msearch(body=lines)
        except NotFoundError:
            return [None for _ in searches]
        except ConnectionTimeout as error:
            SEARCH_TIMEOUTS.labels("opensearch").inc()
            raise SearchUnavailable("the search engine did not answer in time") from error
        except OpenSearchConnectionError as error:
            raise SearchUnavailable("the search engine does not answer") from error
        except TransportError as error:
            raise SearchUnavailable(f"the search engine failed ({error.status_code})") from error
        answers: list[Any] = []
        for answer in response["responses"]:
            if "error" in answer:
                if answer.get("status") == 404:
                    answers.append(None)
                    continue
                raise SearchUnavailable(f"the search engine failed ({answer.get('status')})")
            answers.append(answer)
        return answers

    async def search(self, request: SearchRequest) -> SearchResult:
        plan = build_plan(request)
        searches = [(indices(request, counts=True), plan.counts)]
        if plan.hits is not None:  # only the types asked for, even when all are counted
            searches.append((indices(request), plan.hits))
        counted, *found = await self._msearch(searches)
        listed = found[0] if found else None
        if counted is None or (
            "aggregations" not in counted and (request.facets or request.metric_stats)
        ):
            return SearchResult(hits=[], total=0, facets={}, metric_stats=[])  # no index yet
        hits = [
            Hit(
                entity_type=EntityType(hit["sort"][-2]),
                entity_id=int(hit["sort"][-1]),
                score=hit.get("_score"),
                highlights=hit.get("highlight", {}),
                sort_key=tuple(hit["sort"]),
            )
            for hit in (listed["hits"]["hits"] if listed else [])
        ]
        aggregations = counted.get("aggregations", {})
        selected = {facet: set(values) for facet, values in request.filters}
        facets = {}
        for facet in request.facets:
            buckets = aggregations[f"facet:{facet}"]["values"]["buckets"]
            if facet == TYPE_FACET:
                selected[facet] = {t.value for t in request.entity_types}
            prefix = len(facet) - len(TAG_FACET) + 1 if facet.startswith(TAG_FACET) else 0
            facets[facet] = [
                Bucket(
                    value=(v := str(b["key"])[prefix:]),
                    count=b["doc_count"],
                    selected=v in selected.get(facet, ()),
                )
                for b in buckets
            ]
        stats = [
            aggregations[f"stats:{i}"]["metrics"]["entry"]["values"]
            for i in range(len(request.metric_stats))
        ]
        histograms = await self._histograms(request, plan, stats)
        return SearchResult(
            hits=hits,
            total=counted["hits"]["total"]["value"],
            facets=facets,
            metric_stats=[
                MetricStats(
                    name=wanted.name,
                    dataset=wanted.dataset,
                    count=values["count"],
                    min=values["min"],
                    max=values["max"],
                    avg=values["avg"],
                    histogram=histogram,
                )
                for wanted, values, histogram in zip(
                    request.metric_stats, stats, histograms, strict=True
                )
            ],
        )

    async def _histograms(
        self, request: SearchRequest, plan: Plan, stats: list[dict[str, Any]]
    ) -> list[list[tuple[float, int]]]:
        """Bucket counts over each metric's [min, max], in a second request once both are known
        (both size 0, so a repeated request is two cache hits)."""
        aggregations: dict[str, Any] = {}
        ranges: dict[int, list[tuple[float, float | None]]] = {}
        for i, (wanted, values) in enumerate(zip(request.metric_stats, stats, strict=True)):
            if not values["count"]:
                continue
            ranges[i] = wanted.ranges(values["min"], values["max"])
            bounds = [
                {"from": lo} if hi is None else {"from": lo, "to": hi} for lo, hi in ranges[i]
            ]
            aggregations[f"histogram:{i}"] = {
                "nested": {"path": "metrics"},
                "aggs": {
                    "entry": {
                        "filter": _metric_entry(wanted.name, wanted.dataset),
                        "aggs": {"values": {"range": {"field": "metrics.value", "ranges": bounds}}},
                    }
                },
            }
        if not aggregations:
            return [[] for _ in request.metric_stats]
        query = _filtered(plan.query, list(plan.facet_filters.values()))
        [response] = await self._msearch(
            [
                (
                    indices(request),
                    {"size": 0, "query": query, "track_total_hits": False, "aggs": aggregations},
                )
            ]
        )
        if response is None:  # the indices went away between the two requests
            return [[] for _ in request.metric_stats]
        found = response["aggregations"]
        return [
            [
                (lo, bucket["doc_count"])
                for (lo, _), bucket in zip(
                    ranges[i], found[f"histogram:{i}"]["entry"]["values"]["buckets"], strict=True
                )
            ]
            if i in ranges
            else []
            for i in range(len(request.metric_stats))
        ]
