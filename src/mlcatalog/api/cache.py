"""The response cache of GraphQL reads, and its ETags (docs/architecture.md, "Response cache").

A query's answer is kept under a key of everything it depends on: the document and operation
name as sent, the variables in canonical JSON, the caller's access fingerprint (the policy's
text and the caller's grants: ``auth.access.Access.fingerprint``) and the journal's head.
Every committed change journals in its own transaction and moves the head, which every process
reads afresh for each request (``Database.journal_head``, one primary-key read), so a change
made anywhere makes the next read miss: no invalidation, no stale answer. Entries of old heads
are never asked for again and leave as the least recently used.

What a read can depend on that does not move the head is listed once, in ``NOT_CACHED``: an
operation that may read one of those fields is answered, never kept. ``UNJOURNALED_TABLES``
names, for each table written without a journal entry, the fields that read it, and a test
fails for a table that is in neither it nor the test's list of journaled tables.

Every hit is still authenticated (the fingerprint needs the caller) and charged its caller's
rate limit with the cost its miss computed; the size, depth and cost limits passed when the same
document and variables ran, and they are the process's own, like the cache.
"""

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from strawberry.http import GraphQLRequestData

from mlcatalog.catalog.errors import ErrorCode
from mlcatalog.settings import CacheSettings

# Fields whose answer does not follow from the key, each with why. ``Type.*``: every field of
# the type, however the document reaches it (``node(id:)`` reaches a Webhook too).
NOT_CACHED: dict[str, str] = {
    "Query.me": "answers who asks: API tokens of one role in one project share a fingerprint",
    "Query.search": "the search mirror applies the journal after it (search/indexer.py)",
    "Webhook.*": "the delivery worker moves a hook's cursor and failures without journaling",
    "WebhookDelivery.*": "delivery attempts are not journaled",
}

# Tables written without a journal entry, and the fields (in NOT_CACHED) that read them.
UNJOURNALED_TABLES: dict[str, tuple[str, ...]] = {
    "webhooks": ("Webhook.*",),  # made, changed, disabled: journaled; its cursor: not
    "webhook_deliveries": ("WebhookDelivery.*",),
    "search_checkpoints": ("Query.search",),
    "search_documents": ("Query.search",),
    "search_facets": ("Query.search",),
    "search_metrics": ("Query.search",),
    "search_generation": ("Query.search",),
    # Read by authentication, which runs for every request before its lookup (a revoked
    # token or an ended session is refused before any answer), and by no field.
    "api_tokens": (),
    "sessions": (),
    "idempotency_keys": (),  # read by mutations only
}

# Errors the key decides as surely as the data: the policy's refusals, and what does not exist.
# Others (a deadline, a search backend down, a rate limit, an internal error) are not kept.
KEPT_ERRORS = frozenset({str(ErrorCode.FORBIDDEN), str(ErrorCode.NOT_FOUND)})


def keepable(reads: Iterable[str], error_codes: Iterable[str]) -> bool:
    """Whether an answer that read these fields and has these errors may be kept."""
    for coordinate in reads:
        if coordinate in NOT_CACHED or f"{coordinate.partition('.')[0]}.*" in NOT_CACHED:
            return False
    return all(code in KEPT_ERRORS for code in error_codes)


@dataclass(frozen=True, slots=True)
class Entry:
    """A kept answer: its body, the cost a hit is charged, the operation's name (metrics)."""

    body: bytes
    cost: int
    operation: str | None


class ResponseCache:
    """Answers by key, the least recently used dropped past ``max_entries`` or ``max_bytes``."""

    def __init__(self, settings: CacheSettings, build: str) -> None:
        self.settings = settings
        # Names the schema and code that made the answers: an ETag from before an upgrade
        # matches no answer after it.
        self.build = build
        self.entries: OrderedDict[bytes, Entry] = OrderedDict()
        self.bytes = 0

    def key(self, fingerprint: str, head: int, request: GraphQLRequestData) -> bytes:
        variables = json.dumps(request.variables or {}, sort_keys=True, separators=(",", ":"))
        # JSON of the parts: no two requests spell the same key.
        parts = [self.build, fingerprint, head, request.operation_name, request.query, variables]
        return hashlib.blake2b(json.dumps(parts).encode(), digest_size=20).digest()

    @staticmethod
    def etag(body: bytes, media_type: str) -> str:
        """Strong: names the exact bytes of the answer and its media type, whoever asked."""
        digest = hashlib.blake2b(body, digest_size=20)
        digest.update(b"\0" + media_type.encode())
        return f'"{digest.hexdigest()}"'

    def get(self, key: bytes) -> Entry | None:
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
        return entry

    def put(self, key: bytes, entry: Entry) -> bool:
        """Keep ``entry`` unless it is over ``max_entry_bytes``; whether it was kept."""
        size = len(entry.body)
        if size > self.settings.max_entry_bytes:
            return False
        old = self.entries.pop(key, None)
        if old is not None:
            self.bytes -= len(old.body)
        self.entries[key] = entry
        self.bytes += size
        while len(self.entries) > self.settings.max_entries or self.bytes > self.settings.max_bytes:
            _, dropped = self.entries.popitem(last=False)
            self.bytes -= len(dropped.body)
        return True


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or a list holding the tag (weak comparison, as it says)."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))
