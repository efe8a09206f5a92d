"""The embedded search backend: the same contract as OpenSearch, answered by the relational
database the catalog already has (SQLite or PostgreSQL), from tables the indexer fills."""

import asyncio
import html
import math
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Integer,
    Numeric,
    String,
    and_,
    case,
    cast,
    column,
    delete,
    exists,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select

from mlcatalog.search.documents import Document, Key, document_id
from mlcatalog.search.request import (
    KEYWORD_FACETS,
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
from mlcatalog.search.view import DocumentRow, View
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.rows import (
    FULL_TEXT_COLUMN,
    FULL_TEXT_TABLE,
    ProjectRow,
    SearchDocumentRow,
    SearchFacetRow,
    SearchGenerationRow,
    SearchMetricRow,
)

Doc = SearchDocumentRow
TOKEN = re.compile(r"[a-z0-9]+")
TEXT_FIELDS = ("name", "description", "card", "tag_text")
SortKey = tuple[Any, bool]  # (expression, descending)
# Ends every sort: unique, so search_after pages are exact; the same in OpenSearch.
TIEBREAK: list[SortKey] = [(Doc.entity_type, False), (Doc.entity_id, False)]


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def facet_values(document: Document) -> set[tuple[str, str]]:
    """The (facet, value) pairs a document can be filtered and counted by."""
    pairs: set[tuple[str, str]] = set()
    for facet in KEYWORD_FACETS:
        value = document.get(facet)
        # A model's stages and frameworks are lists: one pair per value.
        values = value if isinstance(value, list) else [] if value is None else [value]
        pairs.update((facet, str(v)) for v in values)
    for tag in document.get("tags", []):
        key, _, value = tag.partition("=")
        pairs.add((f"{TAG_FACET}{key}", value))
    pairs.update(("trained_on", d) for d in document.get("trained_on", []))
    pairs.update(("trained_on_tags", t) for t in document.get("trained_on_tags", []))
    return pairs


SearchText = table(
    FULL_TEXT_TABLE, column("rowid", Integer), column("doc_key", String), column("tokens", String)
)
TYPE_CODES = {t: i for i, t in enumerate(EntityType, start=1)}
# Searchable text per document, in characters of tokens: PostgreSQL refuses a tsvector over 1 MB,
# and no reader needs the 300,001st character of a model card to find it.
MAX_TOKENS_TEXT = 300_000


def text_rowid(key: Key) -> int:
    """The FTS5 row of a document: a stable integer, so that replacing it is a rowid lookup
    (doc_key is an unindexed FTS5 column, and deleting by it would scan the table)."""
    return TYPE_CODES[key[0]] << 32 | key[1]


def searchable(text: str) -> str:
    """The text's tokens, space-separated, cut at a token boundary at MAX_TOKENS_TEXT."""
    joined = " ".join(tokens(text))
    if len(joined) <= MAX_TOKENS_TEXT:
        return joined
    return joined[: MAX_TOKENS_TEXT + 1].rsplit(" ", 1)[0]


def _text_terms(text: str) -> tuple[list[str], list[list[str]]]:
    """Words (all must occur, the last one as a prefix) and quoted phrases, as tokens: letters
    and digits only, so no character of the input ever reaches a full-text query's syntax."""
    parts = text.split('"')
    phrases = [found for phrase in parts[1::2] if (found := tokens(phrase))]
    return tokens(" ".join(parts[0::2])), phrases


class FullText:
    """The text part of a request in the database's own full-text syntax: a condition on the
    documents, and a relevance score (higher is better)."""

    def __init__(self, dialect: str, text: str) -> None:
        words, phrases = _text_terms(text)
        self.empty = not words and not phrases
        self.postgres = dialect == "postgresql"
        self.scores: Any = None  # a subquery to join for the score, where one is needed
        if dialect == "postgresql":
            terms = [*words[:-1], *(f"{w}:*" for w in words[-1:])]
            terms += [f"({' <-> '.join(phrase)})" for phrase in phrases]
            vector: ColumnElement[Any] = literal_column(f"search_documents.{FULL_TEXT_COLUMN}")
            self.query = " & ".join(terms)
            query = func.to_tsquery("simple", self.query)
            self.condition: ColumnElement[bool] = vector.op("@@")(query)
            self.score: ColumnElement[Any] = func.ts_rank(vector, query)
            return
        terms = [*(f'"{w}"' for w in words[:-1]), *(f'"{w}"*' for w in words[-1:])]
        terms += [f'"{" ".join(phrase)}"' for phrase in phrases]
        self.query = " AND ".join(terms)
        match = SearchText.c.tokens.op("MATCH")(self.query)
        self.condition = Doc.doc_key.in_(select(SearchText.c.doc_key).where(match))
        # FTS5 ranks only in a query on its own table; bm25 is lower for better matches.
        bm25 = -func.bm25(literal_column(FULL_TEXT_TABLE))
        self.scores = (
            select(SearchText.c.doc_key, bm25.label("value")).where(match).subquery("scores")
        )
        self.score = self.scores.c.value

    def matches(self, scored: bool) -> str:
        """The driver's statement for (full-text row, score) of every match,
        its one parameter ``query``; the score 0 unless ``scored``. The same scores as
        ``score``; sent to the driver directly, as tens of thousands of rows can match."""
        if self.postgres:  # the document's text_rowid, as SQLite's full-text row is
            codes = " ".join(f"WHEN '{t.value}' THEN {c}" for t, c in TYPE_CODES.items())
            rowid = f"(CASE entity_type {codes} END)::bigint * {1 << 32} + entity_id"
            score = f"ts_rank({FULL_TEXT_COLUMN}, query)" if scored else "0.0"
            return (
                f"SELECT {rowid}, {score} FROM search_documents, to_tsquery('simple', $1) query"
                f" WHERE {FULL_TEXT_COLUMN} @@ query"
            )
        score = f"-bm25({FULL_TEXT_TABLE})" if scored else "0.0"
        return f"SELECT rowid, {score} FROM {FULL_TEXT_TABLE} WHERE tokens MATCH ?"


def _metric_exists(name: str, dataset: str | None, bounds: dict[str, float]) -> ColumnElement[bool]:
    m = aliased(SearchMetricRow)  # the outer query may read search_metrics too
    conditions = [m.doc_key == Doc.doc_key, m.name == name]
    if dataset is not None:
        conditions.append(m.dataset == dataset)
    for bound, value in bounds.items():
        conditions.append(BOUNDS[bound](m.value, value))
    return exists().where(*conditions)


BOUNDS: dict[str, Callable[[Any, float], ColumnElement[bool]]] = {
    "gte": lambda column, value: column >= value,
    "gt": lambda column, value: column > value,
    "lte": lambda column, value: column <= value,
    "lt": lambda column, value: column < value,
}


def _facet_exists(facet: str, values: Sequence[str]) -> ColumnElement[bool]:
    f = aliased(SearchFacetRow)  # the outer query may read search_facets too
    return exists().where(f.doc_key == Doc.doc_key, f.facet == facet, f.value.in_(list(values)))


HIGHLIGHTED = ("name", "description", "card")


def highlights(body: Document, words: list[str]) -> dict[str, list[str]]:
    """Per text field, a fragment with the words (or word prefixes) asked for in <em>: the
    stored text is escaped (as OpenSearch's html encoder does), only the <em> tags are markup."""
    if not words:
        return {}
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\w*", re.IGNORECASE)
    found: dict[str, list[str]] = {}
    for field in HIGHLIGHTED:
        text = str(body.get(field) or "")
        match = pattern.search(text)
        if match:
            start = max(0, match.start() - 60)
            fragment = text[start : match.end() + 90]
            parts, end = [], 0
            for word in pattern.finditer(fragment):
                parts += [html.escape(fragment[end : word.start()]), "<em>"]
                parts += [html.escape(word.group(0)), "</em>"]
                end = word.end()
            found[field] = ["".join([*parts, html.escape(fragment[end:])])]
    return found


# Full-text answers kept per backend (most recently used): at 100,000 documents a common word
# matches ~50,000 (~4 MB of rows each).
TEXT_CACHE = 8
Matches = tuple[Any, Any]  # full-text rows (text_rowid) and their scores, as arrays
EMPTY: Matches = (np.empty(0, np.int64), np.empty(0))
# SQLite calls the progress handler every this many virtual machine steps (about 0.1 ms).
PROGRESS_STEPS = 1000
# PostgreSQL's statement_timeout is set again before a statement only when the one set would let
# it run this much past the search's deadline: a quick search sets it once.
TIMEOUT_SLACK = 0.05


class _Bounded:
    """A session whose statements end by one deadline (none when ``deadline`` is None): none
    starts past it, and on PostgreSQL each is given what remains as its ``statement_timeout``."""

    def __init__(
        self, session: AsyncSession, deadline: float | None = None, postgres: bool = False
    ) -> None:
        self.session = session
        self.deadline = deadline
        self.postgres = postgres
        self.setting: float | None = None  # the statement_timeout set, in seconds

    async def execute(self, stmt: Any) -> Any:
        await self._limit()
        return await self.session.execute(stmt)

    async def scalar(self, stmt: Any) -> Any:
        await self._limit()
        return await self.session.scalar(stmt)

    async def driver_rows(self, statement: str, parameter: Any) -> list[Any]:
        """The rows of a statement in the driver's own syntax (one parameter, used or not), as
        the driver returns them."""
        await self._limit()
        connection = await self.session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        used = "$1" in statement if self.postgres else "?" in statement
        if self.postgres:
            return list(await driver.fetch(statement, *([parameter] if used else [])))
        cursor = await driver.execute(statement, (parameter,) if used else ())
        return list(await cursor.fetchall())

    async def _limit(self) -> None:
        if self.deadline is None:
            return
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise SearchUnavailable("the search did not finish in time")
        if not self.postgres:
            return  # SQLite's progress handler reads the deadline itself
        if self.setting is not None and self.setting <= remaining + TIMEOUT_SLACK:
            return  # a statement starting now still ends by the deadline (within the slack)
        milliseconds = max(1, math.ceil(remaining * 1000))  # 0 would mean no limit
        connection = await self.session.connection()
        await connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
        self.setting = milliseconds / 1000


class SqlSearchBackend:
    def __init__(self, database: Database, *, timeout: float | None = None) -> None:
        self.database = database
        self.timeout = timeout
        # SQLite's FTS5 table is written beside the documents; PostgreSQL derives its tsvector.
        self.full_text_table = database.dialect == "sqlite"
        self.view = View()  # this process's copy of the tables, brought up to date per search
        self.load: asyncio.Task[None] | None = None  # the view's load under way
        self.text_cache: OrderedDict[tuple[int, str, bool], Matches] = OrderedDict()

    async def close(self) -> None:
        """Nothing to close: the catalog owns the database."""

    async def write(
        self, documents: dict[Key, tuple[Document | None, int]], target: str | None = None
    ) -> int:
        """Store each document unless a newer one (a higher journal sequence) is there already."""
        keys = {document_id(key): (key, d, seq) for key, (d, seq) in documents.items()}
        async with self.database.unit_of_work(Origin(actor="indexer")) as uow:
            session = uow.session
            stored_rows = await session.execute(
                select(Doc.doc_key, Doc.seq).where(Doc.doc_key.in_(list(keys)))
            )
            stored = {key: seq for key, seq in stored_rows}
            fresh = [k for k, (_, _, seq) in keys.items() if stored.get(k, -1) < seq]
            if not fresh:
                return 0
            generation = await _next_generation(session)
            await session.execute(delete(SearchFacetRow).where(SearchFacetRow.doc_key.in_(fresh)))
            await session.execute(delete(SearchMetricRow).where(SearchMetricRow.doc_key.in_(fresh)))
            await session.execute(delete(Doc).where(Doc.doc_key.in_(fresh)))
            if self.full_text_table:
                rowids = [text_rowid(keys[key][0]) for key in fresh]
                await session.execute(delete(SearchText).where(SearchText.c.rowid.in_(rowids)))
            documents_rows: list[dict[str, Any]] = []
            facet_rows: list[dict[str, Any]] = []
            metric_rows: list[dict[str, Any]] = []
            for key in fresh:
                (entity_type, entity_id), document, seq = keys[key]
                body = document or {}
                text = " ".join(str(body.get(f) or "") for f in TEXT_FIELDS)
                documents_rows.append(
                    {
                        "doc_key": key,
                        "entity_type": entity_type.value,
                        "entity_id": entity_id,
                        "project_id": body.get("project_id"),
                        "seq": seq,
                        "deleted": document is None,
                        "archived": bool(body.get("archived")),
                        "name": body.get("name", ""),
                        "created_at": _parse_time(body.get("created_at")),
                        "updated_at": _parse_time(body.get("updated_at")),
                        "tokens": searchable(text),
                        "body": body,
                        "generation": generation,
                    }
                )
                facet_rows += [
                    {"doc_key": key, "facet": f, "value": v} for f, v in facet_values(body)
                ]
                metric_rows += [
                    {
                        "doc_key": key,
                        "name": m["name"],
                        "dataset": m["dataset"],
                        "value": m["value"],
                    }
                    for m in body.get("metrics", [])
                ]
            # Bulk inserts (executemany): a rebuild writes thousands of rows per batch.
            await session.execute(insert(Doc), documents_rows)
            if facet_rows:
                await session.execute(insert(SearchFacetRow), facet_rows)
            if metric_rows:
                await session.execute(insert(SearchMetricRow), metric_rows)
            if self.full_text_table:
                text_rows = [
                    {
                        "rowid": text_rowid(keys[d["doc_key"]][0]),
                        "doc_key": d["doc_key"],
                        "tokens": d["tokens"],
                    }
                    for d in documents_rows
                    if not d["deleted"]
                ]
                if text_rows:
                    await session.execute(insert(SearchText), text_rows)
        return len(fresh)

    async def refresh(self) -> None:
        """Writes are visible once committed."""

    async def start_rebuild(self) -> str | None:
        """Rebuilding rewrites the rows in place: searches see the old rows until each commit."""
        return None

    async def finish_rebuild(self, target: str | None, seq: int) -> None:
        """Rows the rebuild did not rewrite belong to entities that no longer exist."""
        async with self.database.unit_of_work(Origin(actor="indexer")) as uow:
            # Rows go away: every view loads everything again.
            generation = await _next_generation(uow.session)
            await uow.session.execute(update(SearchGenerationRow).values(reset=generation))
            if self.full_text_table:
                gone = await uow.session.execute(
                    select(Doc.entity_type, Doc.entity_id).where(Doc.seq < seq)
                )
                rowids = [text_rowid((EntityType(t), i)) for t, i in gone]
                await uow.session.execute(delete(SearchText).where(SearchText.c.rowid.in_(rowids)))
            await uow.session.execute(delete(Doc).where(Doc.seq < seq))

    async def stored_documents(self, keys: Sequence[Key]) -> dict[Key, Document | None]:
        async with self.database.read() as session:
            rows = await session.execute(
                select(Doc.entity_type, Doc.entity_id, Doc.deleted, Doc.body).where(
                    Doc.doc_key.in_([document_id(key) for key in keys])
                )
            )
            return {
                (EntityType(entity_type), entity_id): None if deleted else body
                for entity_type, entity_id, deleted, body in rows
            }

    async def stored_versions(self) -> dict[Key, int]:
        async with self.database.read() as session:
            rows = await session.execute(select(Doc.entity_type, Doc.entity_id, Doc.seq))
            return {(EntityType(t), entity_id): seq for t, entity_id, seq in rows}

    def _filters(
        self, request: SearchRequest, skip_facet: str | None = None
    ) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [Doc.deleted.is_(False)]
        if request.entity_types and skip_facet != TYPE_FACET:
            conditions.append(Doc.entity_type.in_([t.value for t in request.entity_types]))
        if not request.visible.everything:
            conditions.append(request.visible.clause(Doc.project_id))
        if not request.include_archived:
            conditions.append(Doc.archived.is_(False))
        for field, (after, before) in request.time_ranges().items():
            column = Doc.created_at if field == "created_at" else Doc.updated_at
            if after:
                conditions.append(column >= after)
            if before:
                conditions.append(column < before)
        if request.text and request.text.strip():
            # Text with no searchable word (only punctuation) matches nothing, as in OpenSearch.
            text = FullText(self.database.dialect, request.text)
            conditions.append(false() if text.empty else text.condition)
        for bounds in request.metrics:
            limits = {
                k: v for k in ("gte", "gt", "lte", "lt") if (v := getattr(bounds, k)) is not None
            }
            conditions.append(_metric_exists(bounds.name, bounds.dataset, limits))
        if request.trained_on is not None:
            if request.trained_on.dataset_id is not None:
                conditions.append(_facet_exists("trained_on", [str(request.trained_on.dataset_id)]))
            if request.trained_on.tag is not None:
                conditions.append(
                    _facet_exists("trained_on_tags", ["=".join(request.trained_on.tag)])
                )
        for facet, values in request.filters:
            if values and facet != skip_facet:
                conditions.append(_facet_exists(facet, values))
        return conditions

    def _sort(self, request: SearchRequest) -> tuple[list[SortKey], Any]:
        """(expression, descending) pairs ending with the unique entity id, and the subquery
        to outer-join for a metric sort (None otherwise)."""
        desc = request.sort.descending
        by = request.sort.by
        if by == SortBy.METRIC:
            m = SearchMetricRow
            conditions = [m.name == request.sort.metric]
            if request.sort.dataset is not None:
                conditions.append(m.dataset == request.sort.dataset)
            # One aggregate over the metric's entries, joined once (not a subquery per row).
            best = (
                select(m.doc_key, (func.max(m.value) if desc else func.min(m.value)).label("value"))
                .where(*conditions)
                .group_by(m.doc_key)
                .subquery("best")
            )
            # Items without the metric sort last in either direction.
            keys: list[SortKey] = [
                (case((best.c.value.is_(None), 1), else_=0), False),
                (func.coalesce(best.c.value, 0.0), desc),
                *TIEBREAK,
            ]
            return keys, best
        column = {SortBy.NAME: Doc.name, SortBy.UPDATED_AT: Doc.updated_at}.get(by)
        if column is None:  # relevance: the database's full-text rank; without text, newest first
            text = FullText(self.database.dialect, request.text or "")
            if text.empty:
                return [(Doc.updated_at, True), *TIEBREAK], None
            return [(text.score, desc), *TIEBREAK], text.scores
        return [(column, desc), *TIEBREAK], None

    async def search(self, request: SearchRequest) -> SearchResult:
        """Filters, sorts, counts and stats from this process's view of the tables; text
        from the database's full-text index; with text, the hits' bodies (for highlights) by
        primary key."""
        words = tokens(request.text or "")
        scored = request.sort.by == SortBy.RELEVANCE and bool(words)
        async with self.database.read() as raw, self._bounded(raw) as session:
            G = SearchGenerationRow
            state = (await session.execute(select(G.generation, G.reset))).one_or_none()
            generation, reset = state or (0, 0)
            await self._refresh_view(generation, reset, emptied=state is None)
            projects = await self._visible_projects(session, request)
            matches = None
            if request.text and request.text.strip():
                text = FullText(self.database.dialect, request.text)
                # Only punctuation: nothing matches, as in OpenSearch.
                matches = (
                    EMPTY if text.empty else await self._matches(session, text, scored, generation)
                )
            # From here to the bodies' statement nothing awaits: one state of the view.
            view = self.view
            text_mask, scores = self._text_slots(view, matches)
            conditions = view.conditions(request, projects, text_mask)
            base = _all(view.size, conditions)
            keys, _ = view.sort_keys(request, scores if scored else None)
            page = view.page(base, keys, request.after, request.first)
            facets = {}
            for facet in request.facets:
                selected = (
                    {t.value for t in request.entity_types}
                    if facet == TYPE_FACET
                    else {v for name, values in request.filters if name == facet for v in values}
                )
                counted = _all(view.size, conditions, skip=facet)
                facets[facet] = view.facet_counts(counted, facet, selected)
            stats = [view.stats(base, wanted) for wanted in request.metric_stats]
            total = int(base.sum())
            found = [(view.keys[slot], key) for slot, key in page]
            bodies: dict[str, Any] = {}
            if found and words:  # the bodies serve the highlights only
                rows = await session.execute(
                    select(Doc.doc_key, Doc.body).where(Doc.doc_key.in_([k for k, _ in found]))
                )
                bodies = dict(rows.all())
        hits = []
        for doc_key, sort_key in found:
            entity_type, _, entity_id = doc_key.partition(":")
            hits.append(
                Hit(
                    entity_type=EntityType(entity_type),
                    entity_id=int(entity_id),
                    score=float(sort_key[0]) if scored else None,  # type: ignore[arg-type]
                    highlights=highlights(bodies.get(doc_key) or {}, words),
                    sort_key=sort_key,
                )
            )
        return SearchResult(hits=hits, total=total, facets=facets, metric_stats=stats)

    def _text_slots(self, view: View, matches: Matches | None) -> tuple[Any | None, Any | None]:
        """The text's matches as a mask over the view's slots and a score per slot."""
        if matches is None:
            return None, None
        ids, values = matches
        mask = np.zeros(view.size, np.bool_)
        scores = np.full(view.size, np.nan)
        if not len(ids):
            return mask, scores
        slots, held = view.slots_of_rowids(ids)
        slots = slots[held]
        mask[slots] = True
        scores[slots] = values[held]
        return mask, scores

    async def _matches(
        self, session: "_Bounded", text: FullText, scored: bool, generation: int
    ) -> Matches:
        """The text's matches (their text_rowid) and scores; the same text at the same
        generation (no write in between, in any process) is answered from memory. Kept under
        the generation this search's session read, not the view's: on SQLite the session's
        snapshot can be older than a view another search has loaded since."""
        key = (generation, text.query, scored)
        found = self.text_cache.get(key)
        if found is None:
            rows = await session.driver_rows(text.matches(scored), text.query)
            scores = np.fromiter((r[1] for r in rows), np.float64, len(rows))
            found = (np.fromiter((r[0] for r in rows), np.int64, len(rows)), scores)
            self.text_cache[key] = found
            while len(self.text_cache) > TEXT_CACHE:
                self.text_cache.popitem(last=False)
        else:
            self.text_cache.move_to_end(key)
        return found

    async def _visible_projects(
        self, session: "_Bounded", request: SearchRequest
    ) -> tuple[str, list[int]] | None:
        visible = request.visible
        if visible.everything:
            return None
        kind, names = (
            ("only", visible.only) if visible.only is not None else ("hidden", visible.hidden)
        )
        if not names:
            return kind, []
        ids = await session.execute(select(ProjectRow.id).where(ProjectRow.name.in_(names)))
        return kind, list(ids.scalars())

    async def _refresh_view(self, generation: int, reset: int, emptied: bool) -> None:
        """Bring the view to ``generation`` at least: the load runs as a task of its own, so
        a search cancelled at its deadline (the first load of a large catalog takes seconds)
        leaves it going on for the next search instead of starting it again."""
        if emptied:  # the generation's row is gone with the tables: so is what the view holds
            self.view = View()
            self.text_cache.clear()
        for _ in range(2):  # a load already under way may have read an older generation
            if generation <= self.view.generation:
                return
            if self.load is None or self.load.done():
                self.load = asyncio.create_task(self._load())
            await asyncio.shield(self.load)

    async def _load(self) -> None:
        """Load what was written since the view's generation (everything after a rebuild)."""
        view = self.view
        G = SearchGenerationRow
        async with self.database.read() as session:
            if self.database.dialect == "postgresql":  # the statements, one snapshot
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            state = (await session.execute(select(G.generation, G.reset))).one_or_none()
            generation, reset = state or (0, 0)
            if reset > view.generation:
                view = View()
            since = view.generation
            rows = await session.execute(
                select(
                    Doc.doc_key,
                    Doc.entity_type,
                    Doc.entity_id,
                    Doc.project_id,
                    Doc.deleted,
                    Doc.archived,
                    Doc.created_at,
                    Doc.updated_at,
                    Doc.name,
                ).where(Doc.generation > since)
            )
            documents = [
                DocumentRow(r[0], text_rowid((EntityType(r[1]), r[2])), *r[1:]) for r in rows
            ]
            # Millions of rows in a first load: through the driver, without SQLAlchemy's rows.
            driver = _Bounded(session, postgres=self.database.dialect == "postgresql")
            mark = "$1" if driver.postgres else "?"
            changed = f"SELECT doc_key FROM search_documents WHERE generation > {mark}"
            where = f" WHERE doc_key IN ({changed})" if since >= 0 else ""
            facet_rows = await driver.driver_rows(
                f"SELECT doc_key, facet, value FROM search_facets{where}", since
            )
            metric_rows = await driver.driver_rows(
                f"SELECT doc_key, name, dataset, value FROM search_metrics{where}", since
            )
            # Rows of documents written after the documents' statement wait for the next load.
            loaded = {d.doc_key for d in documents}
            view.apply(
                generation,
                documents,
                (r for r in facet_rows if r[0] in loaded),
                (r for r in metric_rows if r[0] in loaded),
            )
            self.view = view

    async def search_in_sql(self, request: SearchRequest) -> SearchResult:
        """The same answer computed by SQL alone: the reference the view's answers are tested
        against (tests/search/test_view.py), and the plans bench/search.py --explain prints."""
        base = self._filters(request)
        sort, joined = self._sort(request)
        columns = (Doc.entity_type, Doc.entity_id, Doc.body, *(e for e, _ in sort))
        stmt: Select[Any] = select(*columns).select_from(Doc).where(*base)
        if joined is not None:
            stmt = stmt.outerjoin(joined, joined.c.doc_key == Doc.doc_key)
        if request.after is not None:
            stmt = stmt.where(_after(sort, request.after))
        stmt = stmt.order_by(*(e.desc() if d else e.asc() for e, d in sort)).limit(request.first)
        async with self.database.read() as raw, self._bounded(raw) as session:
            rows = (await session.execute(stmt)).all()
            total = await session.scalar(select(func.count()).select_from(Doc).where(*base)) or 0
            facets = {f: await self._facet(session, request, f) for f in request.facets}
            stats = [await self._stats(session, request, wanted) for wanted in request.metric_stats]
        words = tokens(request.text or "")
        # With text, relevance sorts by the full-text score: the first sort column.
        scored = request.sort.by == SortBy.RELEVANCE and bool(words)
        hits = [
            Hit(
                entity_type=EntityType(row[0]),
                entity_id=row[1],
                score=float(row[3]) if scored else None,
                highlights=highlights(row[2], words),
                sort_key=tuple(_plain(v) for v in row[3:]),
            )
            for row in rows
        ]
        return SearchResult(hits=hits, total=total, facets=facets, metric_stats=stats)

    @asynccontextmanager
    async def _bounded(self, session: AsyncSession) -> AsyncIterator["_Bounded"]:
        """Stop the database's work at the timeout, not only the wait for it: one deadline for
        the whole search (up to 32 statements). SQLite's progress handler interrupts a statement
        past it; on PostgreSQL each statement is given what remains (``_Bounded``)."""
        postgres = self.database.dialect == "postgresql"
        if self.timeout is None:
            yield _Bounded(session, postgres=postgres)
            return
        deadline = time.monotonic() + self.timeout
        driver = None
        bounded = _Bounded(session, deadline, postgres)
        if not postgres:
            connection = await session.connection()
            driver = (await connection.get_raw_connection()).driver_connection
            if driver is None:  # the pool handed out a closed connection
                raise SearchUnavailable("the search database connection is closed")
            await driver.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
        try:
            yield bounded
        except DBAPIError as error:
            if time.monotonic() < deadline:
                raise
            raise SearchUnavailable("the search did not finish in time") from error
        finally:
            if driver is not None:  # the connection goes back to the pool
                await driver.set_progress_handler(None, 0)

    async def _facet(self, session: "_Bounded", request: SearchRequest, facet: str) -> list[Bucket]:
        f = SearchFacetRow
        filters = self._filters(request, skip_facet=facet)
        if facet == TYPE_FACET:
            counted = (
                select(Doc.entity_type, func.count())
                .where(*filters)
                .group_by(Doc.entity_type)
                .order_by(func.count().desc(), Doc.entity_type)
            )
            selected = {t.value for t in request.entity_types}
        else:
            counted = (
                select(f.value, func.count())
                .join(Doc, Doc.doc_key == f.doc_key)
                .where(f.facet == facet, *filters)
                .group_by(f.value)
                .order_by(func.count().desc(), f.value)
                .limit(100)
            )
            selected = {v for name, values in request.filters if name == facet for v in values}
        return [
            Bucket(value=v, count=n, selected=v in selected)
            for v, n in await session.execute(counted)
        ]

    async def _stats(self, session: "_Bounded", request: SearchRequest, wanted: Any) -> MetricStats:
        m = SearchMetricRow
        conditions = [m.name == wanted.name, *self._filters(request)]
        if wanted.dataset is not None:
            conditions.append(m.dataset == wanted.dataset)
        # PostgreSQL refuses a float sum past the float limit (two values of 1e308): it averages
        # exactly as numeric. SQLite's sum turns infinite there, and is then taken again below.
        postgres = self.database.dialect == "postgresql"
        average = func.avg(cast(m.value, Numeric) if postgres else m.value)
        row = (
            await session.execute(
                select(func.count(m.value), func.min(m.value), func.max(m.value), average)
                .join(Doc, Doc.doc_key == m.doc_key)
                .where(*conditions)
            )
        ).one()
        avg = float(row[3]) if row[3] is not None else None
        if avg is not None and not math.isfinite(avg):  # each value divided first: no overflow
            divided = func.sum(m.value / float(row[0]))
            avg = float(
                await session.scalar(
                    select(divided).join(Doc, Doc.doc_key == m.doc_key).where(*conditions)
                )
            )
        histogram: list[tuple[float, int]] = []
        if row[0]:
            ranges = wanted.ranges(row[1], row[2])
            counts = (
                await session.execute(
                    select(
                        *(
                            func.sum(
                                case(
                                    (
                                        m.value >= lo
                                        if hi is None
                                        else and_(m.value >= lo, m.value < hi),
                                        1,
                                    ),
                                    else_=0,
                                )
                            )
                            for lo, hi in ranges
                        )
                    )
                    .join(Doc, Doc.doc_key == m.doc_key)
                    .where(*conditions)
                )
            ).one()
            histogram = [(lo, int(n or 0)) for (lo, _), n in zip(ranges, counts, strict=True)]
        return MetricStats(
            name=wanted.name,
            dataset=wanted.dataset,
            count=row[0],
            min=row[1],
            max=row[2],
            avg=avg,
            histogram=histogram,
        )


async def _next_generation(session: AsyncSession) -> int:
    """Move the search generation, in the writer's transaction (its row lock orders writers)."""
    G = SearchGenerationRow
    moved = await session.scalar(
        update(G).where(G.id == 1).values(generation=G.generation + 1).returning(G.generation)
    )
    if moved is None:  # the row is gone (the tables were emptied): start again
        session.add(G(id=1, generation=1, reset=0))
        await session.flush()
        return 1
    return int(moved)


def _all(size: int, conditions: list[tuple[str | None, Any]], skip: str | None = None) -> Any:
    """The documents every condition but those of facet ``skip`` holds for."""
    mask = np.ones(size, np.bool_)
    for facet, condition in conditions:
        if skip is None or facet != skip:
            mask &= condition
    return mask


def _after(sort: list[SortKey], key: tuple[object, ...]) -> ColumnElement[bool]:
    if len(key) != len(sort):
        raise ValueError("cursor does not fit this sort")
    # Timestamps travel in cursors as ISO strings.
    values = [
        datetime.fromisoformat(v) if e is Doc.updated_at and isinstance(v, str) else v
        for (e, _), v in zip(sort, key, strict=True)
    ]
    clauses = []
    for i, (expression, desc) in enumerate(sort):
        beyond = expression < values[i] if desc else expression > values[i]
        equal = [e == v for (e, _), v in zip(sort[:i], values[:i], strict=True)]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
