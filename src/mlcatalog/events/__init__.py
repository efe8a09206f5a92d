"""Live events: the hub that wakes subscribers when the journal grows."""
