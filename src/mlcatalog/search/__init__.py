"""Search: the request contract, the document builder, two backends and the journal indexer."""
