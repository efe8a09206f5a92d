"""The backend-neutral search contract: what a caller asks and what it gets back."""

import itertools
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from mlcatalog.store.visibility import EVERYTHING, Visible


class EntityType(StrEnum):
    MODEL = "MODEL"
    MODEL_VERSION = "MODEL_VERSION"
    DATASET = "DATASET"
    EXPERIMENT = "EXPERIMENT"
    RUN = "RUN"


class SortBy(StrEnum):
    RELEVANCE = "RELEVANCE"
    UPDATED_AT = "UPDATED_AT"
    NAME = "NAME"
    METRIC = "METRIC"


KEYWORD_FACETS = ("project", "stage", "framework", "task", "owner")
TAG_FACET = "tag:"
# Counts per entity type; its filter is the request's entity_types, so it is counted
# disjunctively like any facet.
TYPE_FACET = "type"
MAX_TEXT = 1000
MAX_PAGE = 200


class InvalidSearch(ValueError):
    """A request no backend can answer (unknown facet, empty range, bad page size…)."""


class SearchUnavailable(Exception):
    """The search engine cannot answer now; the catalog itself is unaffected."""


def check_facet(facet: str, *, counted: bool = False) -> str:
    """A facet to filter by or, with ``counted``, to count (the type facet is counted only:
    entity types filter it)."""
    if facet in KEYWORD_FACETS or (facet.startswith(TAG_FACET) and len(facet) > len(TAG_FACET)):
        return facet
    if facet == TYPE_FACET:
        if counted:
            return facet
        raise InvalidSearch("filter by entity type with entityTypes, not a facet filter")
    raise InvalidSearch(
        f"unknown facet {facet[:50]!r}: use {', '.join(KEYWORD_FACETS)}, type or tag:<key>"
    )


@dataclass(frozen=True)
class MetricRange:
    """One metric entry must match name, dataset (when given) and every bound at once."""

    name: str
    dataset: str | None = None
    gte: float | None = None
    gt: float | None = None
    lte: float | None = None
    lt: float | None = None


@dataclass(frozen=True)
class TrainedOn:
    """Versions trained on this dataset, or on any dataset carrying this tag."""

    dataset_id: int | None = None
    tag: tuple[str, str] | None = None


@dataclass(frozen=True)
class Sort:
    by: SortBy = SortBy.RELEVANCE
    descending: bool = True
    metric: str | None = None
    dataset: str | None = None


MAX_BUCKETS = 1000  # a histogram by interval may not cut the filtered range finer


@dataclass(frozen=True)
class MetricStatsRequest:
    """Stats of a metric, with a histogram of ``buckets`` equal buckets from min to max, or of
    buckets ``interval`` wide aligned on its multiples."""

    name: str
    dataset: str | None = None
    buckets: int = 10
    interval: float | None = None

    def ranges(self, low: float, high: float) -> list[tuple[float, float | None]]:
        """The histogram's [from, to) ranges over the filtered values' [low, high]."""
        if self.interval is None:
            return bucket_ranges(low, high, self.buckets)
        # Finite values and interval can still give infinite quotients (5e-324) or starts (1e308).
        quotients = (low / self.interval, high / self.interval)
        if not all(math.isfinite(q) for q in quotients):
            raise InvalidSearch(f"interval {self.interval} is too small for {self.name!r}")
        first = math.floor(quotients[0])
        count = math.floor(quotients[1]) - first + 1
        if count > MAX_BUCKETS:
            raise InvalidSearch(
                f"interval {self.interval} cuts {self.name!r} into {count} buckets"
                f" (at most {MAX_BUCKETS})"
            )
        starts = [(first + i) * self.interval for i in range(count + 1)]
        # Each bucket must be a range: no infinite bound, none empty (values too large for the
        # interval to move them apart).
        if not all(math.isfinite(s) for s in starts[:-1]) or any(
            a >= b for a, b in itertools.pairwise(starts)
        ):
            raise InvalidSearch(
                f"interval {self.interval} cannot cut {self.name!r} into buckets at these values"
            )
        return [(start, end) for start, end in itertools.pairwise(starts)]


@dataclass(frozen=True)
class SearchRequest:
    text: str | None = None
    entity_types: tuple[EntityType, ...] = ()
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    include_archived: bool = False
    metrics: tuple[MetricRange, ...] = ()
    trained_on: TrainedOn | None = None
    sort: Sort = Sort()
    facets: tuple[str, ...] = ()
    metric_stats: tuple[MetricStatsRequest, ...] = ()
    first: int = 20
    after: tuple[object, ...] | None = None
    # The projects the caller sees: backends filter hits, totals, facets and stats by it.
    visible: Visible = EVERYTHING

    def __post_init__(self) -> None:
        for name in ("created_after", "created_before", "updated_after", "updated_before"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:  # a time without offset is UTC
                object.__setattr__(self, name, moment.replace(tzinfo=UTC))
        if self.text is not None and len(self.text) > MAX_TEXT:
            raise InvalidSearch(f"text is longer than {MAX_TEXT} characters")
        # One more than a page is allowed: callers ask for it to learn whether a next page exists.
        if not 0 <= self.first <= MAX_PAGE + 1:
            raise InvalidSearch(f"first must be between 0 and {MAX_PAGE}")
        for facet, _ in self.filters:
            check_facet(facet)
        for facet in self.facets:
            check_facet(facet, counted=True)
        for stats in self.metric_stats:
            if not 1 <= stats.buckets <= 100:
                raise InvalidSearch("a histogram has between 1 and 100 buckets")
            if stats.interval is not None and not (
                math.isfinite(stats.interval) and stats.interval > 0
            ):
                raise InvalidSearch("a histogram's interval is a positive number")
        for bounds in self.metrics:
            if all(b is None for b in (bounds.gte, bounds.gt, bounds.lte, bounds.lt)):
                raise InvalidSearch(f"metric {bounds.name!r} needs at least one bound")
        if self.sort.by == SortBy.METRIC and not self.sort.metric:
            raise InvalidSearch("sorting by METRIC needs the metric's name")
        for after, before in self.time_ranges().values():
            if after and before and after >= before:
                raise InvalidSearch("a time range must end after it starts")

    def time_ranges(self) -> dict[str, tuple[datetime | None, datetime | None]]:
        """Per document time field, the [after, before) range asked for (None: open)."""
        ranges = {
            "created_at": (self.created_after, self.created_before),
            "updated_at": (self.updated_after, self.updated_before),
        }
        return {field: bounds for field, bounds in ranges.items() if any(bounds)}


@dataclass(frozen=True)
class Hit:
    entity_type: EntityType
    entity_id: int
    score: float | None
    highlights: dict[str, list[str]]
    sort_key: tuple[object, ...]


@dataclass(frozen=True)
class Bucket:
    value: str
    count: int
    selected: bool


@dataclass(frozen=True)
class MetricStats:
    name: str
    dataset: str | None
    count: int
    min: float | None
    max: float | None
    avg: float | None
    histogram: list[tuple[float, int]] = field(default_factory=list)


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    total: int
    facets: dict[str, list[Bucket]]
    metric_stats: list[MetricStats]


def bucket_ranges(low: float, high: float, buckets: int) -> list[tuple[float, float | None]]:
    """Equal-width histogram buckets over [low, high], as [from, to) with the last one open, so
    that every backend counts the same values into the same buckets."""
    if high <= low:
        return [(low, None)]
    # Divided first: high - low overflows for values of opposite signs near the float limit.
    width = high / buckets - low / buckets
    starts = [_start(low, i, width) for i in range(buckets)]
    if width <= 0 or any(a >= b for a, b in itertools.pairwise(starts)):
        return [(low, None)]  # values too close for this many buckets (5e-324 apart)
    return [(start, starts[i + 1] if i + 1 < buckets else None) for i, start in enumerate(starts)]


def _start(low: float, i: int, width: float) -> float:
    """low + i * width, halved for the sum where the product overflows (it never exceeds high)."""
    start = low + i * width
    return start if math.isfinite(start) else (low / 2 + i * (width / 2)) * 2
