"""Root queries and mutations, one module per family."""
