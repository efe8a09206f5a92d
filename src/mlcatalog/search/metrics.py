"""The search side's Prometheus metrics (exposed by the API's /metrics)."""

from prometheus_client import Counter

SEARCH_TIMEOUTS = Counter(
    "mlcatalog_search_timeouts_total",
    "Searches that ran out of time: the API's deadline (deadline) or the engine's client "
    "timeout (opensearch).",
    ["limit"],
)
for _limit in ("deadline", "opensearch"):
    SEARCH_TIMEOUTS.labels(_limit)  # every series exists from the start, at 0
