"""Search: request and result, document builder, backends and the indexer (next issue)."""
