"""The search contract in GraphQL (docs/architecture.md, "Search")."""

from datetime import datetime
from typing import Annotated

import strawberry

from mlcatalog.api.pagination import PageInfo
from mlcatalog.api.types.common import OrderDirection
from mlcatalog.api.types.datasets import Dataset
from mlcatalog.api.types.experiments import Experiment, Run
from mlcatalog.api.types.models import Model
from mlcatalog.api.types.versions import ModelVersion
from mlcatalog.search.request import EntityType, SortBy

strawberry.enum(EntityType, description="What a search hit can be.")
strawberry.enum(SortBy)


@strawberry.input(description='{facet: "framework", values: ["pytorch"]}; "tag:team" for a tag.')
class FacetFilterInput:
    facet: str
    values: list[str]


@strawberry.input(description="One metric entry must match name, dataset and every bound.")
class MetricRangeInput:
    name: str
    dataset: str | None = None
    gte: float | None = None
    gt: float | None = None
    lte: float | None = None
    lt: float | None = None


@strawberry.input
class TagMatchInput:
    key: str
    value: str


@strawberry.input(description="Trained on this dataset, or on any dataset carrying this tag.")
class DatasetMatchInput:
    dataset: strawberry.ID | None = None
    tag: TagMatchInput | None = None


@strawberry.input
class SearchSortInput:
    by: SortBy = SortBy.RELEVANCE
    metric: str | None = None
    dataset: str | None = None
    direction: OrderDirection = OrderDirection.DESC


@strawberry.input(
    description="A histogram of `buckets` equal buckets from min to max, or, with `interval`,"
    " of buckets that wide aligned on its multiples (1,000 at most)."
)
class MetricStatsInput:
    name: str
    dataset: str | None = None
    buckets: int = 10
    interval: float | None = None


@strawberry.input
class SearchInput:
    text: str | None = None
    entity_types: list[EntityType] | None = None
    filters: list[FacetFilterInput] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    include_archived: bool = False
    metrics: list[MetricRangeInput] | None = None
    trained_on: DatasetMatchInput | None = None
    sort: list[SearchSortInput] | None = None
    facets: list[str] | None = None
    metric_stats: list[MetricStatsInput] | None = None
    first: int | None = None
    after: str | None = None


SearchHit = Annotated[
    Model | ModelVersion | Dataset | Experiment | Run, strawberry.union("SearchHit")
]


@strawberry.type
class Highlight:
    field: str
    fragments: list[str]


@strawberry.type
class SearchEdge:
    cursor: str
    score: float | None
    highlights: list[Highlight]
    node: SearchHit


@strawberry.type
class FacetBucket:
    value: str
    count: int
    selected: bool


@strawberry.type
class Facet:
    facet: str
    buckets: list[FacetBucket]


@strawberry.type
class HistogramBucket:
    start: float
    count: int


@strawberry.type
class MetricStats:
    name: str
    dataset: str | None
    count: int
    min: float | None
    max: float | None
    avg: float | None
    histogram: list[HistogramBucket]


@strawberry.type
class SearchResult:
    total_count: int
    edges: list[SearchEdge]
    page_info: PageInfo
    facets: list[Facet]
    metric_stats: list[MetricStats]
