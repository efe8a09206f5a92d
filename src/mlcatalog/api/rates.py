"""Rate limits per principal: a token bucket per subject, in this process's memory.

Two limits, each a setting under ``limits`` (0 turns it off): mutations per minute, where each
root field of a mutation takes one token (so aliases cannot pack thirty writes into one), and
expensive reads per minute, where a query whose cost (``api/limits.py``) is over
``expensive_cost`` takes one. A bucket holds one minute's worth and refills continuously; an
operation its bucket cannot pay is refused whole, before any resolver runs, and told how long
to wait. Memory is bounded: at most ``rate_limited_subjects`` buckets, the least recently used
dropped first, each keyed by a 16-byte digest of its subject (a subject can be kilobytes long).
A dropped bucket starts full again, which is what a subject idle for a minute has anyway.
"""

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from mlcatalog.settings import LimitsSettings


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # when ``tokens`` was last brought up to date


class TokenBuckets:
    """A bucket of ``per_minute`` tokens per subject, refilled at ``per_minute`` a minute."""

    def __init__(
        self, per_minute: int, *, most_subjects: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.most_subjects = most_subjects
        self.clock = clock
        self.buckets: OrderedDict[bytes, _Bucket] = OrderedDict()

    def take(self, subject: str, tokens: int = 1) -> float:
        """Take ``tokens`` from the subject's bucket and return 0, or take nothing and return the
        seconds until the bucket holds them. More than a bucket holds costs a full bucket."""
        now = self.clock()
        key = hashlib.blake2b(subject.encode(), digest_size=16).digest()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket(self.capacity, now)
            if len(self.buckets) > self.most_subjects:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
            refill = max(0.0, now - bucket.at) * self.rate
            bucket.tokens = min(self.capacity, bucket.tokens + refill)
            bucket.at = now
        need = min(float(tokens), self.capacity)
        if bucket.tokens >= need:
            bucket.tokens -= need
            return 0.0
        return (need - bucket.tokens) / self.rate


@dataclass(frozen=True)
class Refusal:
    """An operation over its caller's limit: what it exceeded, and the whole seconds to wait."""

    message: str
    retry_after: int


class RateLimits:
    """The process's limits on mutations and on expensive reads, per subject."""

    def __init__(
        self, settings: LimitsSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.expensive_cost = settings.expensive_cost

        def buckets(per_minute: int) -> TokenBuckets | None:
            if per_minute == 0:
                return None
            return TokenBuckets(
                per_minute, most_subjects=settings.rate_limited_subjects, clock=clock
            )

        self.mutations = buckets(settings.mutations_per_minute)
        self.expensive_reads = buckets(settings.expensive_reads_per_minute)

    def mutation(self, subject: str, fields: int) -> Refusal | None:
        """A mutation operation of ``fields`` root fields, by ``subject``."""
        if self.mutations is None:
            return None
        wait = self.mutations.take(subject, fields)
        most = self.settings.mutations_per_minute
        return _refusal(wait, f"more than {most:,} mutations a minute by this caller")

    def query(self, subject: str, cost: int) -> Refusal | None:
        """A query of ``cost`` (api/limits.py) by ``subject``: cheap ones are never limited."""
        if self.expensive_reads is None or cost <= self.expensive_cost:
            return None
        wait = self.expensive_reads.take(subject)
        most = self.settings.expensive_reads_per_minute
        what = f"more than {most:,} queries a minute of cost over {self.expensive_cost:,}"
        return _refusal(wait, f"{what} by this caller")


def _refusal(wait: float, what: str) -> Refusal | None:
    if wait <= 0:
        return None
    seconds = max(1, math.ceil(wait))
    return Refusal(f"rate limited: {what}; retry in {seconds} s", seconds)
