"""Events: the hub that wakes subscribers when the journal grows (lifecycle issue)."""
