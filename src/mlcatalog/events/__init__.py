"""Events that leave the catalog: webhooks (delivered from the journal)."""
