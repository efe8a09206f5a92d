"""Events: the hub that wakes subscribers when the journal grows, and webhooks (delivered from
the journal)."""
