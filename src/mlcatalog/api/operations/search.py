"""The search query: SearchInput → the backend → hits hydrated through the loaders."""

import asyncio
import base64
import binascii
import hashlib
import json
import math
from collections.abc import Callable
from typing import Any

import strawberry
from strawberry import relay

from mlcatalog.api.context import Info
from mlcatalog.api.ids import decode
from mlcatalog.api.limits import DEFAULT_SEARCH_PAGE, capped
from mlcatalog.api.pagination import PageInfo
from mlcatalog.api.types.common import OrderDirection
from mlcatalog.api.types.datasets import Dataset
from mlcatalog.api.types.experiments import Experiment, Run
from mlcatalog.api.types.models import Model
from mlcatalog.api.types.search import (
    Facet,
    FacetBucket,
    Highlight,
    HistogramBucket,
    MetricStats,
    SearchEdge,
    SearchHit,
    SearchInput,
    SearchResult,
)
from mlcatalog.api.types.versions import ModelVersion
from mlcatalog.search import request as contract
from mlcatalog.search.documents import ROWS
from mlcatalog.search.metrics import SEARCH_TIMEOUTS
from mlcatalog.search.request import EntityType, InvalidSearch, SearchUnavailable
from mlcatalog.store.visibility import Visible

# The GraphQL type each kind of hit resolves to (its row type: documents.ROWS).
NODES: dict[EntityType, Callable[[Any], SearchHit]] = {
    EntityType.MODEL: Model.from_row,
    EntityType.MODEL_VERSION: ModelVersion.from_row,
    EntityType.DATASET: Dataset.from_row,
    EntityType.EXPERIMENT: Experiment.from_row,
    EntityType.RUN: Run.from_row,
}


def _fingerprint(input: SearchInput) -> str:
    """What a cursor belongs to: the query without its page."""
    shape = strawberry.asdict(input)
    shape.pop("after", None)
    shape.pop("first", None)
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _cursor(fingerprint: str, key: tuple[object, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps([fingerprint, list(key)]).encode()).decode()


def _after(fingerprint: str, cursor: str | None) -> tuple[object, ...] | None:
    if cursor is None:
        return None
    try:
        owner, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise InvalidSearch("after is not a cursor this API returned") from None
    if owner != fingerprint or not isinstance(key, list):
        raise InvalidSearch("after is a cursor from another search")
    if len(key) > MAX_KEY_VALUES or not all(_key_value(value) for value in key):
        raise InvalidSearch("after is not a cursor this API returned")
    return tuple(key)


MAX_KEY_VALUES = 8  # a sort key: up to three sorts, then entity type and id


def _key_value(value: object) -> bool:
    """Whether a cursor value is one the engines can compare: a forged one must not reach them."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            value.encode()  # a lone surrogate cannot be
        except UnicodeEncodeError:
            return False
        return len(value) <= 1000 and "\x00" not in value
    return False


def page_size(input: SearchInput) -> int:
    size = DEFAULT_SEARCH_PAGE if input.first is None else input.first
    if not 0 <= size <= contract.MAX_PAGE:
        raise InvalidSearch(f"first must be between 0 and {contract.MAX_PAGE}")
    return size


def to_request(input: SearchInput, fingerprint: str, visible: Visible) -> contract.SearchRequest:
    sort = input.sort[0] if input.sort else None
    trained_on = None
    if input.trained_on is not None:
        match = input.trained_on
        trained_on = contract.TrainedOn(
            dataset_id=decode(relay.GlobalID.from_id(match.dataset), "Dataset")
            if match.dataset
            else None,
            tag=(match.tag.key, match.tag.value) if match.tag else None,
        )
    return contract.SearchRequest(
        text=input.text,
        entity_types=tuple(input.entity_types or ()),
        filters=tuple((f.facet, tuple(f.values)) for f in input.filters or ()),
        created_after=input.created_after,
        created_before=input.created_before,
        updated_after=input.updated_after,
        updated_before=input.updated_before,
        include_archived=input.include_archived,
        metrics=tuple(
            contract.MetricRange(m.name, m.dataset, m.gte, m.gt, m.lte, m.lt)
            for m in input.metrics or ()
        ),
        trained_on=trained_on,
        sort=contract.Sort(
            by=sort.by,
            descending=sort.direction == OrderDirection.DESC,
            metric=sort.metric,
            dataset=sort.dataset,
        )
        if sort
        else contract.Sort(),
        facets=tuple(input.facets or ()),
        visible=visible,
        metric_stats=tuple(
            contract.MetricStatsRequest(s.name, s.dataset, s.buckets, s.interval)
            for s in input.metric_stats or ()
        ),
        first=page_size(input) + 1,  # the extra hit only tells whether a next page exists
        after=_after(fingerprint, input.after),
    )


@strawberry.type
class SearchQueries:
    @strawberry.field(
        description="Faceted search over models, versions, datasets, experiments and runs."
    )
    async def search(self, info: Info, input: SearchInput) -> SearchResult:
        fingerprint = _fingerprint(input)
        request = to_request(input, fingerprint, info.context.gate.visible)
        backend = info.context.search
        if backend is None:
            raise SearchUnavailable(
                "no search backend is configured (MLCATALOG_SEARCH__OPENSEARCH_URL)"
            )
        try:
            found = await asyncio.wait_for(backend.search(request), info.context.search_timeout)
        except TimeoutError:
            SEARCH_TIMEOUTS.labels("deadline").inc()
            raise SearchUnavailable("the search engine did not answer in time") from None
        size = page_size(input)
        hits = found.hits[:size]
        # One batched load per entity type (the loaders group the ids).
        loaders = info.context.loaders
        rows = await asyncio.gather(*(loaders.row(ROWS[h.entity_type], h.entity_id) for h in hits))
        edges = []
        for hit, row in zip(hits, rows, strict=True):
            if row is None:
                continue  # gone from the store since it was indexed: never show it
            node: SearchHit = NODES[hit.entity_type](row)
            edges.append(
                SearchEdge(
                    cursor=_cursor(fingerprint, hit.sort_key),
                    score=hit.score,
                    highlights=[
                        Highlight(field=f, fragments=capped("Highlight.fragments", v))
                        for f, v in sorted(hit.highlights.items())
                    ],
                    node=node,
                )
            )
        last = _cursor(fingerprint, hits[-1].sort_key) if hits else None
        return SearchResult(
            total_count=found.total,
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(found.hits) > size,
                has_previous_page=request.after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=last,
            ),
            facets=[
                Facet(
                    facet=name,
                    buckets=[
                        FacetBucket(value=b.value, count=b.count, selected=b.selected)
                        for b in buckets
                    ],
                )
                for name, buckets in found.facets.items()
            ],
            metric_stats=[
                MetricStats(
                    name=s.name,
                    dataset=s.dataset,
                    count=s.count,
                    min=s.min,
                    max=s.max,
                    avg=s.avg,
                    histogram=[
                        HistogramBucket(start=start, count=count) for start, count in s.histogram
                    ],
                )
                for s in found.metric_stats
            ],
        )
