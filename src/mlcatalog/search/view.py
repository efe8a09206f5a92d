"""Each process's in-memory, columnar view of the embedded search tables: the tables stay the
truth (the indexer writes them, every process reads them), and a search answers its filters,
sorts, facet counts and metric stats from numpy arrays in a few milliseconds at 100,000 versions
instead of joining and aggregating 100,000 rows in SQL.

Freshness: every write moves search_generation.generation in its own transaction and stamps the
rows it stores with it; before each search the view reads the counter (one indexed lookup) and
loads the documents stamped since the generation it holds, so a search never answers from
before a write that committed before it started, in any process. A rebuild deletes rows: it
sets ``reset`` and every view loads everything again.

Memory per document: ~50 bytes of columns, ~150 of key and name strings and maps, 8 per facet
value (slot, code), 12 per metric entry (slot, value): bench/search.py's catalog (36 metric
entries and ~10 facet values a version) measures 666 bytes a document, 80 MB per process for
120,020 documents (View.memory). A process loads it whole at its first search.
"""

import bisect
import math
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from mlcatalog.search.request import (
    TYPE_FACET,
    Bucket,
    EntityType,
    MetricStats,
    MetricStatsRequest,
    SearchRequest,
    SortBy,
)

Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
# The sort: (kind, per-slot values, descending); the kind says how a cursor's value is read.
SortKeys = list[tuple[str, Any, bool]]
# Entity types by their names' order: the tie-break sorts by the name, as SQL does.
TYPE_NAMES = sorted(t.value for t in EntityType)
TYPE_RANK = {name: i for i, name in enumerate(TYPE_NAMES)}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FACET_BUCKETS = 100  # the most values a facet count returns, as in SQL and OpenSearch


def micros(moment: datetime | None) -> float:
    """A timestamp as float microseconds since the epoch (exact below 2**53), NaN for none:
    NaN compares false, as NULL does in SQL."""
    if moment is None:
        return math.nan
    return float((moment - EPOCH) // timedelta(microseconds=1))


def moment(value: float) -> datetime:
    return EPOCH + timedelta(microseconds=int(value))


@dataclass
class DocumentRow:
    """One search_documents row, as the view keeps it."""

    doc_key: str
    rowid: int  # the full-text row (sql.text_rowid)
    entity_type: str
    entity_id: int
    project_id: int | None
    deleted: bool
    archived: bool
    created_at: datetime | None
    updated_at: datetime | None
    name: str


class _Entries:
    """(slot, code or value) pairs of one facet or one (metric, dataset), in arrays."""

    def __init__(self, dtype: Any) -> None:
        self.slots: npt.NDArray[np.int32] = np.empty(0, np.int32)
        self.data: npt.NDArray[Any] = np.empty(0, dtype)

    def replace(self, changed: Ints | None, slots: list[int], data: list[Any]) -> None:
        """Drop the entries of the ``changed`` slots (None: none), then add these."""
        if changed is not None and len(self.slots):
            keep = ~np.isin(self.slots, changed)
            if not keep.all():
                self.slots, self.data = self.slots[keep], self.data[keep]
        if slots:
            self.slots = np.concatenate([self.slots, np.asarray(slots, np.int32)])
            self.data = np.concatenate([self.data, np.asarray(data, self.data.dtype)])


class _Facet(_Entries):
    def __init__(self) -> None:
        super().__init__(np.int32)
        self.values: list[str] = []
        self.codes: dict[str, int] = {}

    def code(self, value: str) -> int:
        found = self.codes.get(value)
        if found is None:
            found = self.codes[value] = len(self.values)
            self.values.append(value)
        return found


class View:
    def __init__(self) -> None:
        self.generation = -1  # nothing loaded
        self.slots: dict[str, int] = {}  # doc_key → slot
        self.keys: list[str] = []
        self.names: list[str] = []
        self.size = 0
        self.rowid = np.empty(0, np.int64)
        self.type_rank = np.empty(0, np.int8)
        self.entity_id = np.empty(0, np.int64)
        self.project_id = np.empty(0, np.int64)  # -1: no project
        self.live = np.empty(0, np.bool_)  # not a tombstone
        self.archived = np.empty(0, np.bool_)
        self.created = np.empty(0, np.float64)
        self.updated = np.empty(0, np.float64)
        self.facets: dict[str, _Facet] = {}
        self.metrics: dict[str, dict[str | None, _Entries]] = defaultdict(dict)
        self._rowid_order: Ints | None = None  # slots by rowid, for the full-text ids
        self._name_order: tuple[list[str], Ints] | None = None  # sorted names, each slot's rank

    def memory(self) -> int:
        """About how many bytes the view holds (arrays, and the key and name strings)."""
        arrays: list[npt.NDArray[Any]] = [self.rowid, self.type_rank, self.entity_id]
        arrays += [self.project_id, self.live]
        arrays += [self.archived, self.created, self.updated]
        arrays += [a for f in self.facets.values() for a in (f.slots, f.data)]
        arrays += [a for d in self.metrics.values() for e in d.values() for a in (e.slots, e.data)]
        strings = sys.getsizeof(self.slots) + sys.getsizeof(self.keys) + sys.getsizeof(self.names)
        strings += sum(
            sys.getsizeof(k) + sys.getsizeof(n) for k, n in zip(self.keys, self.names, strict=True)
        )
        return sum(a.nbytes for a in arrays) + strings

    # Loading

    def apply(
        self,
        generation: int,
        documents: list[DocumentRow],
        facets: Iterable[tuple[str, str, str]],
        metrics: Iterable[tuple[str, str, str | None, float]],
    ) -> None:
        """Take these rows (documents, and the facet and metric rows of exactly those
        documents) as the current ones, in one synchronous step: a search never sees half."""
        fresh = not self.slots
        slots = [self._slot(row) for row in documents]
        changed = None if fresh else np.asarray(slots, np.int64)
        facet_rows: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for doc_key, facet, value in facets:
            entry = facet_rows[facet]
            entry[0].append(self.slots[doc_key])
            entry[1].append(self.facets.setdefault(facet, _Facet()).code(value))
        for facet, entries in self.facets.items():
            new_slots, codes = facet_rows.get(facet, ([], []))
            entries.replace(changed, new_slots, codes)
        metric_rows: dict[tuple[str, str | None], tuple[list[int], list[float]]] = defaultdict(
            lambda: ([], [])
        )
        for doc_key, name, dataset, number in metrics:
            pair = metric_rows[name, dataset]
            pair[0].append(self.slots[doc_key])
            pair[1].append(number)
        for name, dataset in metric_rows:
            self.metrics[name].setdefault(dataset, _Entries(np.float64))
        for name, datasets in self.metrics.items():
            for dataset, pairs in datasets.items():
                new_slots, values = metric_rows.get((name, dataset), ([], []))
                pairs.replace(changed, new_slots, values)
        self._rowid_order = None
        self._name_order = None
        self.generation = generation

    def _slot(self, row: DocumentRow) -> int:
        slot = self.slots.get(row.doc_key)
        if slot is None:
            slot = self.slots[row.doc_key] = self.size
            self.size += 1
            self.keys.append(row.doc_key)
            self.names.append(row.name)
            if self.size > len(self.live):
                self._grow(max(1024, 2 * self.size))
        self.names[slot] = row.name
        self.rowid[slot] = row.rowid
        self.type_rank[slot] = TYPE_RANK[row.entity_type]
        self.entity_id[slot] = row.entity_id
        self.project_id[slot] = -1 if row.project_id is None else row.project_id
        self.live[slot] = not row.deleted
        self.archived[slot] = row.archived
        self.created[slot] = micros(row.created_at)
        self.updated[slot] = micros(row.updated_at)
        return slot

    def _grow(self, capacity: int) -> None:
        for name in ("rowid", "type_rank", "entity_id", "project_id", "live", "archived"):
            old = getattr(self, name)
            new = np.zeros(capacity, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)
        for name in ("created", "updated"):
            old = getattr(self, name)
            new = np.full(capacity, np.nan)
            new[: len(old)] = old
            setattr(self, name, new)

    def slots_of_rowids(self, rowids: Ints) -> tuple[Ints, Mask]:
        """The slots of these full-text rows, and which of them the view holds."""
        if self._rowid_order is None:
            self._rowid_order = np.argsort(self.rowid[: self.size], kind="stable")
        order = self._rowid_order
        if not len(order):
            return np.zeros(len(rowids), np.int64), np.zeros(len(rowids), np.bool_)
        sorted_ids = self.rowid[order]
        at = np.minimum(np.searchsorted(sorted_ids, rowids), len(order) - 1)
        return order[at], sorted_ids[at] == rowids

    def name_order(self) -> tuple[list[str], Ints]:
        """The distinct names in order, and each slot's rank among them."""
        if self._name_order is None:
            unique, rank = np.unique(np.array(self.names, dtype=object), return_inverse=True)
            self._name_order = (list(unique), rank.astype(np.int64))
        return self._name_order

    # Searching

    def conditions(
        self,
        request: SearchRequest,
        projects: tuple[str, list[int]] | None,
        text: Mask | None,
    ) -> list[tuple[str | None, Mask]]:
        """Each filter as a mask over the slots, with the facet whose count leaves it out.
        ``projects``: ("only" or "hidden", project ids) when the caller sees less than
        everything; ``text``: the documents the text matches."""
        n = self.size
        found: list[tuple[str | None, Mask]] = [(None, self.live[:n].copy())]
        if request.entity_types:
            ranks = [TYPE_RANK[t.value] for t in request.entity_types]
            found.append((TYPE_FACET, np.isin(self.type_rank[:n], ranks)))
        if projects is not None:
            kind, ids = projects
            inside = np.isin(self.project_id[:n], ids)
            found.append((None, inside if kind == "only" else ~inside))
        if not request.include_archived:
            found.append((None, ~self.archived[:n]))
        for field, (after, before) in request.time_ranges().items():
            column = (self.created if field == "created_at" else self.updated)[:n]
            if after:
                found.append((None, column >= micros(after)))
            if before:
                found.append((None, column < micros(before)))
        if text is not None:
            found.append((None, text))
        for bounds in request.metrics:
            matched = np.zeros(n, np.bool_)
            for pairs in self._pairs(bounds.name, bounds.dataset):
                ok = np.ones(len(pairs.data), np.bool_)
                if bounds.gte is not None:
                    ok &= pairs.data >= bounds.gte
                if bounds.gt is not None:
                    ok &= pairs.data > bounds.gt
                if bounds.lte is not None:
                    ok &= pairs.data <= bounds.lte
                if bounds.lt is not None:
                    ok &= pairs.data < bounds.lt
                matched[pairs.slots[ok]] = True
            found.append((None, matched))
        if request.trained_on is not None:
            if request.trained_on.dataset_id is not None:
                wanted = [str(request.trained_on.dataset_id)]
                found.append((None, self._facet_mask("trained_on", wanted)))
            if request.trained_on.tag is not None:
                wanted = ["=".join(request.trained_on.tag)]
                found.append((None, self._facet_mask("trained_on_tags", wanted)))
        for facet, values in request.filters:
            if values:
                found.append((facet, self._facet_mask(facet, values)))
        return found

    def _facet_mask(self, facet: str, values: Iterable[str]) -> Mask:
        mask = np.zeros(self.size, np.bool_)
        entries = self.facets.get(facet)
        if entries is not None:
            codes = [entries.codes[v] for v in values if v in entries.codes]
            if codes:
                mask[entries.slots[np.isin(entries.data, codes)]] = True
        return mask

    def _pairs(self, name: str, dataset: str | None) -> list[_Entries]:
        """The entries of a metric on a dataset, or on every dataset (None)."""
        datasets = self.metrics.get(name, {})
        if dataset is None:
            return list(datasets.values())
        return [datasets[dataset]] if dataset in datasets else []

    def facet_counts(self, mask: Mask, facet: str, selected: set[str]) -> list[Bucket]:
        """Matching documents per value, most first, then by value."""
        if facet == TYPE_FACET:
            counts = np.bincount(self.type_rank[: self.size][mask], minlength=len(TYPE_NAMES))
            values = TYPE_NAMES
            limit = len(TYPE_NAMES)
        else:
            entries = self.facets.get(facet)
            if entries is None:
                return []
            counts = np.bincount(entries.data[mask[entries.slots]], minlength=len(entries.values))
            values = entries.values
            limit = FACET_BUCKETS
        buckets = sorted((-int(counts[c]), values[c]) for c in np.flatnonzero(counts))
        return [Bucket(value=v, count=-n, selected=v in selected) for n, v in buckets[:limit]]

    def stats(self, mask: Mask, wanted: MetricStatsRequest) -> MetricStats:
        parts = [p.data[mask[p.slots]] for p in self._pairs(wanted.name, wanted.dataset)]
        values = np.concatenate(parts) if parts else np.empty(0)
        if not len(values):
            return MetricStats(wanted.name, wanted.dataset, 0, None, None, None, [])
        low, high = float(values.min()), float(values.max())
        listed = values.tolist()
        count = len(listed)
        try:
            avg = math.fsum(listed) / count  # exact sum, as PostgreSQL's numeric average
        except OverflowError:  # past the float limit: each value divided first
            avg = math.fsum(v / count for v in listed)
        histogram = []
        for lo, hi in wanted.ranges(low, high):
            inside = values >= lo if hi is None else (values >= lo) & (values < hi)
            histogram.append((lo, int(inside.sum())))
        return MetricStats(wanted.name, wanted.dataset, count, low, high, avg, histogram)

    def sort_keys(self, request: SearchRequest, scores: Floats | None) -> tuple[SortKeys, int]:
        """The sort as (kind, per-slot values, descending) ending with the unique tie-break;
        kind says how a cursor's value is read. The second item: how many leading keys make
        the score (the relevance sort)."""
        n = self.size
        desc = request.sort.descending
        tiebreak: SortKeys = [
            ("type", self.type_rank[:n], False),
            ("id", self.entity_id[:n], False),
        ]
        by = request.sort.by
        if by == SortBy.METRIC:
            assert request.sort.metric is not None
            best = np.full(n, np.nan)
            for pairs in self._pairs(request.sort.metric, request.sort.dataset):
                (np.fmax if desc else np.fmin).at(best, pairs.slots, pairs.data)
            missing = np.isnan(best)
            return [
                ("missing", missing.astype(np.int64), False),
                ("float", np.where(missing, 0.0, best), desc),
                *tiebreak,
            ], 0
        if by == SortBy.NAME:
            return [("name", self.name_order()[1], desc), *tiebreak], 0
        if by == SortBy.UPDATED_AT:
            return [("time", self.updated[:n], desc), *tiebreak], 0
        if scores is None:  # relevance without text: newest first
            return [("time", self.updated[:n], True), *tiebreak], 0
        return [("float", scores, desc), *tiebreak], 1

    def page(
        self,
        mask: Mask,
        keys: SortKeys,
        after: tuple[object, ...] | None,
        first: int,
    ) -> list[tuple[int, tuple[object, ...]]]:
        """The first ``first`` matching slots in sort order past the cursor, with their sort
        keys as SQL returns them."""
        candidates = np.flatnonzero(mask)
        # Each key as numbers where ascending is the sort's order.
        columns = [np.negative(v[candidates]) if d else v[candidates] for _, v, d in keys]
        if after is not None:
            if len(after) != len(keys):
                raise ValueError("cursor does not fit this sort")
            beyond = np.zeros(len(candidates), np.bool_)
            equal = np.ones(len(candidates), np.bool_)
            for column, (kind, _, desc), value in zip(columns, keys, after, strict=True):
                bound = self._cursor_value(kind, value)
                bound = -bound if desc else bound
                beyond |= equal & (column > bound)
                equal &= column == bound
            candidates = candidates[beyond]
            columns = [c[beyond] for c in columns]
        if first <= 0 or not len(candidates):
            return []
        if len(candidates) > first:
            # Only the rows that can be among the first: the first key up to the first-th value.
            # A metric sort's first key is only "missing": fold it into the value (missing
            # last), which orders no row before one it follows.
            first_key = columns[0]
            if keys[0][0] == "missing":
                first_key = np.where(columns[0] == 1, np.inf, columns[1])
            cut = np.partition(first_key, first - 1)[first - 1]
            near = first_key <= cut
            candidates = candidates[near]
            columns = [c[near] for c in columns]
        order = np.lexsort(columns[::-1])[:first]
        return [(int(s), self._sort_key(int(s), keys)) for s in candidates[order]]

    def _cursor_value(self, kind: str, value: object) -> float:
        """A cursor's value in the numbers the keys of its kind are compared in."""
        if kind == "time":
            if not isinstance(value, str):
                raise ValueError("cursor does not fit this sort")
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError("naive datetime given to a UtcDateTime column")
            return micros(parsed)
        if kind in ("name", "type"):
            if not isinstance(value, str):
                raise ValueError("cursor does not fit this sort")
            ordered = TYPE_NAMES if kind == "type" else self.name_order()[0]
            at = bisect.bisect_left(ordered, value)
            # Between two ranks when the value is not one of them.
            return float(at) if at < len(ordered) and ordered[at] == value else at - 0.5
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("cursor does not fit this sort")
        return float(value)

    def _sort_key(self, slot: int, keys: SortKeys) -> tuple[object, ...]:
        found: list[object] = []
        for kind, values, _ in keys:
            value = values[slot]
            if kind == "time":
                found.append(moment(float(value)).isoformat())
            elif kind == "name":
                found.append(self.names[slot])
            elif kind == "type":
                found.append(TYPE_NAMES[int(value)])
            elif kind in ("id", "missing"):
                found.append(int(value))
            else:
                found.append(float(value))
        return tuple(found)
