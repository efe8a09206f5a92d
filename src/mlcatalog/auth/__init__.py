"""Who is asking: principals, and bearer tokens from the organisation's OIDC provider."""
